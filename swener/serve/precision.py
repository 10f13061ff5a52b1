"""The precision an exported tagger runs in: float32, or ONNX Runtime's dynamic int8; chosen per CPU.

Measured on the 2-core AMD EPYC of these machines (AVX-512 BF16 and VNNI, onnxruntime 1.32):
ONNX Runtime has no bf16 kernels on the CPU (a bf16 MatMul graph fails with NOT_IMPLEMENTED),
so bf16 stays with torch (`--engine flair --precision bf16`, which costs torch's import);
dynamic int8 (`onnxruntime.quantization.quantize_dynamic`: int8 weights, activations quantised
on the fly) ran the BiLSTM-CRF encoder about 2x faster than float32.

int8 changes the tags a little, so it is the default only where it was checked:
`python -m swener.serve.precision_check FOLDER` tags the dev split in float32 and int8, times both
and writes `precision.json` (and `model.int8.onnx`) into the export folder. `choose` then
picks int8 when the CPU has int8 dot-product instructions (VNNI or AMX), the check was made on
a CPU with them, int8 was faster and its dev F1 within `MAX_F1_DROP` of float32; else float32.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from swener.atomic import atomic_path
from swener.errors import SwenerError

INT8_FILE = "model.int8.onnx"
CHECK_FILE = "precision.json"
MAX_F1_DROP = 0.003  # 0.3 points of micro F1
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # CPUs with int8 dot products
PRECISIONS = ("auto", "float32", "int8", "bf16")


def cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def int8_model(source: Path) -> Path:
    """The int8 graph of an export's float32 model.onnx, quantised (and kept beside it) when missing or older."""
    folder, target = source.parent, source.parent / INT8_FILE
    if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
        return target
    print(f"{folder}: quantising the model to int8 once ({INT8_FILE})", file=sys.stderr)
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:  # pragma: no cover - onnxruntime without its quantisation tools
        raise SwenerError("int8 needs onnxruntime.quantization (pip install onnx)") from None
    import logging

    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process is for image models
    try:
        with atomic_path(target, suffix=".onnx") as tmp:
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
    except OSError as err:
        raise SwenerError(f"{target}: cannot write the int8 model ({err.strerror}); make the folder writable "
                          "or use --precision float32") from None
    return target


def choose(folder: Path, flags: set[str] | None = None) -> tuple[str, str]:
    """The default precision of an export folder on this CPU, and why (a line for stderr)."""
    flags = cpu_flags() if flags is None else flags
    found = [f for f in INT8_FLAGS if f in flags]
    if not found:
        return "float32", "float32 (this CPU has no int8 dot-product instructions)"
    path = folder / CHECK_FILE
    if not path.is_file():
        return "float32", (f"float32 (int8 not checked on dev: python -m swener.serve.precision_check {folder}; "
                           "or force it with --precision int8)")
    try:
        check = json.loads(path.read_text(encoding="utf-8"))
        f32, int8 = check["float32"], check["int8"]
        drop = f32["dev_f1"] - int8["dev_f1"]
        faster = int8["tokens_per_second"] > f32["tokens_per_second"]
        same_kind = any(f in check.get("cpu_flags", []) for f in INT8_FLAGS)
    except (OSError, ValueError, KeyError, TypeError):
        return "float32", f"float32 ({path} is not a precision check; run the check again)"
    if drop > MAX_F1_DROP or not faster or not same_kind:
        why = (f"int8 lost {100 * drop:.2f} F1 points on dev" if drop > MAX_F1_DROP else
               "int8 was not faster" if not faster else "the check ran on a CPU without VNNI")
        return "float32", f"float32 ({why})"
    return "int8", (f"int8 (dev F1 {int8['dev_f1']:.4f} vs float32 {f32['dev_f1']:.4f}, {int8['tokens_per_second']:,} "
                    f"vs {f32['tokens_per_second']:,} tokens/s model-only; CPU has {found[0]}); "
                    "--precision float32 for float32")
