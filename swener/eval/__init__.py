"""Scoring (entity-level F1, bootstrap) and evaluating a tagger on a corpus (scores, costs)."""
