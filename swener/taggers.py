"""Compatibility: `swener.taggers` moved to `swener.students.tagger` (the old import path keeps working)."""
from swener.students.tagger import StudentTagger, attach_soft_labels, build_student  # noqa: F401
