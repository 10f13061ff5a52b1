"""Compatibility: `swener.embeddings` moved to `swener.vectors.embeddings` (the old import path keeps working)."""
from swener.vectors.embeddings import CompactFastTextEmbeddings  # noqa: F401
