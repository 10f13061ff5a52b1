"""Stacked convolutions over the word vectors (Flair has no CNN sequence encoder)."""
from __future__ import annotations

from typing import Any

import torch

from swener.students.encoders.base import Encoder, padding_mask, register


@register("cnn")
class CNN(Encoder):
    """`layers` masked Conv1d + ReLU layers of odd width `kernel_size`, `hidden_size` channels each."""

    def __init__(self, input_size: int, hidden_size: int, layers: int = 2, kernel_size: int = 3) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd to keep the sequence length, got {kernel_size}")
        super().__init__(input_size, hidden_size)
        self.layers, self.kernel_size = layers, kernel_size
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(input_size if i == 0 else hidden_size, hidden_size, kernel_size, padding=kernel_size // 2)
            for i in range(layers))

    def options(self) -> dict[str, Any]:
        return {"layers": self.layers, "kernel_size": self.kernel_size}

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padding is zeroed before every layer, so it never leaks into a sentence."""
        mask = padding_mask(lengths, vectors.size(1), vectors.device).transpose(1, 2)
        x = vectors.transpose(1, 2)
        for conv in self.convs:
            x = torch.relu(conv(x * mask))
        return (x * mask).transpose(1, 2)
