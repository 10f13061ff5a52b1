"""What a student encoder is, and the registry that finds one by name.

An encoder is a small `torch.nn.Module`: word vectors [B, T, D] and their lengths [B] in,
features [B, T, H] out (H = `output_size`), padding never leaking into a sentence. A student
family is an encoder with a head (softmax or CRF, `swener.config.FAMILIES`); the student
tagger puts dropout, a linear layer to the tags and the head on top. A new encoder is a
module of this package with a class decorated `@register("name")`, and its name in
`swener.config.ENCODERS`.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

import torch

E = TypeVar("E", bound="Encoder")
REGISTRY: dict[str, type[Encoder]] = {}


class Encoder(torch.nn.Module):
    """Base class: `forward(vectors [B, T, D], lengths [B]) -> [B, T, output_size]`."""

    name: str = ""
    recurrent: bool = False  # Flair keeps word dropout only for a CRF head or a recurrent encoder

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.output_size = hidden_size

    def options(self) -> dict[str, Any]:
        """The constructor's keyword options (besides the sizes), saved with the model."""
        return {}

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def register(name: str) -> Callable[[type[E]], type[E]]:
    """Class decorator: make an Encoder subclass available under `name`."""
    def add(cls: type[E]) -> type[E]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"encoder {name!r} is registered twice ({REGISTRY[name].__module__}, {cls.__module__})")
        cls.name = name
        REGISTRY[name] = cls
        return cls
    return add


def padding_mask(lengths: torch.Tensor, steps: int, device: torch.device) -> torch.Tensor:
    """[B, T, 1] boolean mask: True on a sentence's tokens, False on padding (x * mask keeps x's dtype)."""
    return (torch.arange(steps, device=device)[None, :] < lengths.to(device)[:, None]).unsqueeze(-1)
