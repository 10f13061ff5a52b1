"""swener: Swedish named-entity recognition with knowledge distillation.

Importing the package registers its Flair classes (embeddings, student taggers), so that
`flair.nn.Classifier.load(path)` can load a tagger that swener trained. The command line
sets SWENER_LAZY=1 to skip that import and answer `--help` quickly.
"""
import os

__version__ = "0.1.0"

if not os.environ.get("SWENER_LAZY"):
    from swener import registry  # noqa: F401  (registers Flair classes)
