"""Reduced-precision students: bf16 autocast, and dynamic int8 quantisation with its own file format.

- bf16: the student predicts under `torch.autocast("cpu", dtype=torch.bfloat16)` (the
  encoder's matrix products in bfloat16, decoding in float32). A saved bf16 variant is the
  same Flair model file with `precision: "bf16"`; Flair's `Classifier.load` loads it.
- int8: `torch.ao.quantization.quantize_dynamic` on the LSTM and linear layers (weights
  int8, activations quantised on the fly). It is deprecated in torch 2.13 and torchao does
  not cover `nn.LSTM`, so it is an option guarded by tests, not a default. Flair cannot load
  a quantised state dict, so int8 variants are `*.int8.pt` files read by `load_int8`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from swener.errors import SwenerError

INT8_FORMAT = "swener-int8-student"
INT8_SUFFIX = ".int8.pt"


def _student(tagger, path: Path | str):
    from swener.students.tagger import StudentTagger

    if not isinstance(tagger, StudentTagger):
        raise SwenerError(f"{path}: reduced precision is for swener students, not a {type(tagger).__name__}")
    return tagger


def quantize_int8(tagger):
    """A dynamically int8-quantised copy of a float student (LSTM and linear layers)."""
    import torch

    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # pragma: no cover - a torch without the (deprecated) eager quantisation
        raise SwenerError("int8 needs torch.ao.quantization.quantize_dynamic, which this torch lacks") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = quantize_dynamic(tagger.eval(), {torch.nn.LSTM, torch.nn.Linear}, dtype=torch.qint8)
    quantized.precision = "int8"
    return quantized


def apply_precision(tagger, precision: str, path: Path | str = "model"):
    """The tagger at a precision: "float32" as is, "bf16" (autocast when predicting) or "int8"."""
    if precision == "float32":
        return tagger
    tagger = _student(tagger, path)
    if precision == "bf16":
        tagger.precision = "bf16"
        return tagger
    if precision == "int8":
        return tagger if getattr(tagger, "precision", None) == "int8" else quantize_int8(tagger)
    raise SwenerError(f"precision must be float32, bf16 or int8, not {precision!r}")


def _quantized_prefixes(model) -> list[str]:
    return [name for name, module in model.named_modules()
            if name and type(module).__module__.startswith("torch.ao.nn.quantized")]


def save_int8(quantized, float_tagger, path: Path) -> None:
    """Write an int8 variant: the float model's Flair state without the quantised layers, and their int8 state."""
    import torch

    prefixes = _quantized_prefixes(quantized)
    state = float_tagger._get_state_dict()

    def quantized_key(key: str) -> bool:
        return any(key == p or key.startswith(p + ".") for p in prefixes)

    shapes = {k: list(v.shape) for k, v in state["state_dict"].items() if quantized_key(k)}
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if not quantized_key(k)}
    int8_state = quantized.state_dict()  # keeps `_metadata` (module versions) that the quantised loaders need
    for key in [k for k in int8_state if not quantized_key(k)]:
        del int8_state[key]
    torch.save({"format": INT8_FORMAT, "version": 1, "flair_state": state, "float_shapes": shapes,
                "int8_state": int8_state, "class": type(float_tagger).__name__}, path)


def load_int8(path: Path | str):
    """Read a file written by `save_int8`: the student skeleton, quantised, with the saved int8 weights."""
    import torch

    from swener.students.tagger import StudentTagger, current_key

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds on a damaged file
        raise SwenerError(f"{path}: not a readable int8 student ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or data.get("format") != INT8_FORMAT:
        raise SwenerError(f"{path}: not an int8 student (write one with `swener export MODEL --precision int8`)")
    state = data["flair_state"]
    state["state_dict"] = {**state["state_dict"],
                           **{k: torch.zeros(shape) for k, shape in data["float_shapes"].items()}}
    int8_state = type(data["int8_state"])((current_key(k), v) for k, v in data["int8_state"].items())
    int8_state._metadata = type(data["int8_state"]._metadata)(  # module versions, for the quantised loaders
        (current_key(k + ".")[:-1] if k else k, v) for k, v in data["int8_state"]._metadata.items())
    skeleton = StudentTagger._init_model_with_state_dict(state)
    quantized = quantize_int8(skeleton)
    missing, unexpected = quantized.load_state_dict(int8_state, strict=False)
    if unexpected or any(k in int8_state for k in missing):
        raise SwenerError(f"{path}: int8 weights do not fit the model ({unexpected or missing})")
    return quantized.eval()
