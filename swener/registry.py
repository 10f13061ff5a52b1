"""Imports every module that defines a Flair class, so that saved swener models load."""

import swener.embeddings  # noqa: F401  (CompactFastTextEmbeddings)
import swener.taggers  # noqa: F401  (StudentTagger)
import swener.teacher_tagger  # noqa: F401  (TeacherTagger)
