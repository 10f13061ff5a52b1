"""The window tagger: a feed-forward network over a fixed window of word vectors (Collobert et al. 2011).

Each token sees the vectors of `window` words on either side of it (zero vectors beyond the
sentence's ends), concatenated into one [(2 x window + 1) x D] input of a hidden layer with a
hard tanh. It has no recurrence and no stacking: the cheapest context a tagger can have.
"""
from __future__ import annotations

from typing import Any

import torch

from swener.students.encoders.base import Encoder, padding_mask, register


@register("window")
class Window(Encoder):
    """[B, T, D] -> [B, T, hidden]: hardtanh(W [x_{t-w}; ...; x_t; ...; x_{t+w}] + b) per token."""

    def __init__(self, input_size: int, hidden_size: int, window: int = 2) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1 word either side, got {window}")
        super().__init__(input_size, hidden_size)
        self.window = window
        self.hidden = torch.nn.Linear((2 * window + 1) * input_size, hidden_size)

    def options(self) -> dict[str, Any]:
        return {"window": self.window}

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(lengths, vectors.size(1), vectors.device)
        steps, w = vectors.size(1), self.window
        padded = torch.nn.functional.pad(vectors * mask, (0, 0, w, w))  # zero words before and after
        windows = torch.cat([padded[:, i:i + steps] for i in range(2 * w + 1)], dim=-1)
        return torch.nn.functional.hardtanh(self.hidden(windows)) * mask
