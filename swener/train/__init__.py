"""One training entry point for the teacher and the students (Flair's trainer, atomic run folders), saved models."""
