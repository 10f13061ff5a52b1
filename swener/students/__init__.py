"""The students: encoders registered by name, the student tagger (encoder x head, the lean batch path, the KD
objective), a run end to end, dev sweeps."""
