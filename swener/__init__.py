"""swener: Swedish named-entity recognition with knowledge distillation.

Importing the package registers its Flair classes (embeddings, student and teacher taggers),
so that `flair.nn.Classifier.load(path)` can load a tagger that swener trained (Flair finds a
saved model's class by its name among the loaded subclasses). The command line sets
SWENER_LAZY=1 to skip that import and answer `--help` quickly.
"""
import os

__version__ = "0.1.0"

if not os.environ.get("SWENER_LAZY"):
    import swener.students.tagger  # noqa: F401  (StudentTagger)
    import swener.teacher.model  # noqa: F401  (TeacherTagger)
    import swener.vectors.embeddings  # noqa: F401  (CompactFastTextEmbeddings)
