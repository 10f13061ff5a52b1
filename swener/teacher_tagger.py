"""Compatibility: `swener.teacher_tagger` moved to `swener.teacher.model` (the old import path keeps working)."""
from swener.teacher.model import TeacherTagger  # noqa: F401
