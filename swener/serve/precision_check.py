"""`python -m swener.serve.precision_check FOLDER`: dev F1 and speed of an export in float32 and int8.

Writes precision.json into the export folder, which `swener.serve.precision.choose` reads to
pick the default precision of `swener tag`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from swener.atomic import write_json
from swener.errors import SwenerError
from swener.serve.onnx import OnnxTagger
from swener.serve.precision import CHECK_FILE, INT8_FLAGS, choose, cpu_flags


def dev_check(folder: Path, corpus: str = "webbnyheter2012", split: str = "dev", batch_size: int = 64) -> dict:
    """Dev F1 and model-only tokens/s of an export folder in float32 and int8 (one thread each)."""
    from swener.data import corpora
    from swener.data.tags import bioes_spans, iob2_of_spans
    from swener.eval.scoring import score

    sentences = [s for s in corpora.load(corpus).splits[split] if s.tokens]
    tokens = sum(len(s.tokens) for s in sentences)
    out: dict = {"corpus": corpus, "split": split, "sentences": len(sentences), "tokens": tokens,
                 "cpu_flags": sorted(cpu_flags() & set(INT8_FLAGS + ("avx512_bf16", "amx_bf16"))),
                 "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    for precision in ("float32", "int8"):
        tagger = OnnxTagger(folder, precision=precision)
        token_lists = [s.tokens for s in sentences]
        tagger.tag_tokens(token_lists, batch_size)  # warm: subword vectors, the session
        started = time.perf_counter()
        results = tagger.tag_tokens(token_lists, batch_size)
        seconds = time.perf_counter() - started
        pred = [iob2_of_spans(len(tags), [(a, b, k) for a, b, k, _ in bioes_spans(tags)]) for tags, _ in results]
        out[precision] = {"dev_f1": round(score([s.tags for s in sentences], pred).micro_f1, 4),
                          "tokens_per_second": round(tokens / seconds)}
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m swener.serve.precision_check FOLDER`: check int8 against float32 on dev and write precision.json."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("folder", type=Path, help="an export folder (swener export)")
    parser.add_argument("--corpus", default="webbnyheter2012")
    args = parser.parse_args(argv)
    try:
        check = dev_check(args.folder, args.corpus)
    except SwenerError as err:
        raise SystemExit(f"error: {err}") from None
    write_json(args.folder / CHECK_FILE, check)
    print(json.dumps(check))
    print(f"{args.folder}: default precision {choose(args.folder)[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
