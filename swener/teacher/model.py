"""The teacher's Flair class: a SequenceTagger whose softmax head is decoded as a BIOES chain.

With `decoding="bioes"` a softmax teacher predicts the most probable *valid* BIOES sequence
(constrained Viterbi over its log-softmax scores) instead of the per-token argmax, and its
probabilities are the marginals of that constrained chain (`swener.kd.bioes`). Training is
Flair's: per-token cross-entropy. `decoding="argmax"` is Flair's own behaviour.
"""
from __future__ import annotations

from typing import Any

import torch
from flair.models import SequenceTagger

from swener.kd import bioes

DECODINGS = ("bioes", "argmax")


class TeacherTagger(SequenceTagger):
    """A Flair SequenceTagger (softmax or CRF head) with BIOES-constrained decoding of a softmax head."""

    def __init__(self, *args: Any, decoding: str = "bioes", **kwargs: Any) -> None:
        """`decoding`: "bioes" (constrained Viterbi, the default) or "argmax" (Flair's per-token argmax)."""
        if decoding not in DECODINGS:
            raise ValueError(f"decoding must be one of {DECODINGS}, got {decoding!r}")
        super().__init__(*args, **kwargs)
        self.decoding = decoding

    @property
    def tags(self) -> list[str]:
        """The tag names of the output columns."""
        return [self.label_dictionary.get_item_for_index(i) for i in range(len(self.label_dictionary))]

    def constrained(self) -> bool:
        """True when the softmax head is decoded as a BIOES chain."""
        return not self.use_crf and self.decoding == "bioes"

    def padded_log_softmax(self, scores: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """Flair's flat [tokens, K] softmax-head scores as a padded [B, T, K] log-softmax."""
        rows = torch.split(torch.log_softmax(scores.float(), dim=-1), lengths)
        return torch.nn.utils.rnn.pad_sequence(list(rows), batch_first=True, padding_value=0.0)

    def chain_log_marginals(self, scores: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """[B, T, K] log-marginals of the constrained chain (padding -inf)."""
        return bioes.log_marginals(self.padded_log_softmax(scores, lengths), torch.tensor(lengths), self.tags)

    def _standard_inference(self, features: torch.Tensor, batch: list, probabilities_for_all_classes: bool):
        if not self.constrained():
            return super()._standard_inference(features, batch, probabilities_for_all_classes)
        lengths = [len(sentence) for sentence in batch]
        logp = self.padded_log_softmax(features, lengths)
        paths = bioes.viterbi(logp, torch.tensor(lengths), self.tags)
        marginals = bioes.log_marginals(logp, torch.tensor(lengths), self.tags).exp()
        names = self.tags
        predictions = [[(names[tag], float(marginals[b, t, tag])) for t, tag in enumerate(path)]
                       for b, path in enumerate(paths)]
        all_tags = []
        if probabilities_for_all_classes:
            flat = torch.cat([marginals[b, :n] for b, n in enumerate(lengths)])
            all_tags = self._all_scores_for_token(batch, flat, lengths)
        return predictions, all_tags

    def _get_state_dict(self) -> dict:
        return {**super()._get_state_dict(), "decoding": self.decoding}

    @classmethod
    def _init_model_with_state_dict(cls, state: dict, **kwargs: Any):
        return super()._init_model_with_state_dict(state, decoding=state.get("decoding", "bioes"), **kwargs)


def load_teacher(path):
    """A saved teacher (or any swener tagger whose class is imported), with one clear error otherwise."""
    from swener.train.saved import load_flair

    return load_flair(path)
