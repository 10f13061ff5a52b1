"""Labelled data: the corpus registry and its checked files, readers (one per format), the tokeniser, tag schemes."""
