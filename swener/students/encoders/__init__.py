"""Student encoders registered by name (`swener.config.ENCODERS`): each module here defines one."""
from __future__ import annotations

import importlib
from typing import Any

from swener import config
from swener.students.encoders.base import REGISTRY, Encoder, register  # noqa: F401

for _name in config.ENCODERS:  # each module registers its class when imported
    importlib.import_module(f"swener.students.encoders.{_name}")


def encoder_class(name: str) -> type[Encoder]:
    """The registered encoder class of `name` (a ValueError naming the choices otherwise)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown encoder {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def check_options(name: str, options: dict[str, Any]) -> None:
    """A ValueError naming the encoder's options if `options` holds a key its class does not take."""
    import inspect

    known = [p for p in inspect.signature(encoder_class(name).__init__).parameters
             if p not in ("self", "input_size", "hidden_size")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"the {name} encoder has no option {', '.join(unknown)}; its options: {', '.join(known)}")


def build(name: str, input_size: int, hidden_size: int, **options: Any) -> Encoder:
    """An encoder of the registered class `name`."""
    return encoder_class(name)(input_size, hidden_size, **options)
