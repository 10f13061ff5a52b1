"""Knowledge distillation: the KD loss, CRF and BIOES-chain algebra (marginals, k-best, decoding), the soft-label
cache, the trainer plugins."""
