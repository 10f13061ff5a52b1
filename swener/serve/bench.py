"""`make bench`: what the teacher and every student cost to run, measured in one run, each in a process of its own.

    python -m swener.serve.bench [--model NAME=PATH ...] [--repeats 5] [--out results/full/bench.json]
    python -m swener.serve.bench agreement MODEL      # the lean path's tags against Flair's own, same model file
    python -m swener.serve.bench epoch FAMILY --embeddings DIR [--epochs N --seeds 1,2,3]  # training paths compared

Without --model, the models are the short names of `swener models` (teacher and the four
student families). Every student is measured at float32 (its lean path), as an ONNX export
and at int8 (and bf16 with --bf16: fast on CPUs with AVX-512 BF16 or AMX, emulated and
several times slower on AVX2 ones); the teacher at its float32 Flair path (length-sorted batches). Each
(model, variant) runs in a child process, one after another, never next to training:
tokens/s is the median of `repeats` passes over the Webbnyheter test split (batch 32,
one thread) with the spread (max - min) / median; latency is the median of 20
one-sentence calls; peak RSS is the child's; F1 is strict micro F1 on the same split.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("float32", "onnx", "int8", "bf16")
DEFAULT_OUT = Path("results/full/bench.json")
log = logging.getLogger("swener")


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM): unlike getrusage's ru_maxrss, not the parent's before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _load(path: Path, variant: str, threads: int):
    """The tagger of one variant; an ONNX variant is exported to a temporary folder first (not timed)."""
    from swener.serve import names as models

    if variant == "onnx":
        folder = path if path.is_dir() else _export(path)
        return models.load_tagger(str(folder), engine="onnx", threads=threads), folder
    return models.load_tagger(str(path), engine="flair", precision=variant), path


def _export(path: Path, folder: Path | None = None) -> Path:
    """The export beside a model file, else a fresh one in `folder` (a temporary folder by default)."""
    from swener.serve.onnx import default_folder, is_export

    if is_export(default_folder(path)):
        return default_folder(path)
    from swener.serve import export
    from swener.serve import names as models

    folder = folder or Path(tempfile.mkdtemp(prefix="swener-bench-")) / "export"
    export.export(models.load_tagger(str(path), engine="flair"), path, folder)
    return folder


def _tagger_fn(tagger, batch_size: int):
    """A function tagging token lists with the model's serving path (tag_tokens, else Flair's predict)."""
    if hasattr(tagger, "tag_tokens"):
        return lambda tokens: tagger.tag_tokens(tokens, batch_size)
    from flair.data import Sentence

    return lambda tokens: tagger.predict([Sentence(t) for t in tokens], mini_batch_size=batch_size)


def measure(path: Path, variant: str, corpus_name: str, repeats: int, batch_size: int, threads: int) -> dict:
    """One (model, variant) in this process: F1, tokens/s (median of repeats), spread, latency."""
    from swener.data import corpora
    from swener.eval import evaluate
    from swener.eval.scoring import score

    if variant != "onnx":
        import torch

        torch.set_num_threads(threads)
    started = time.perf_counter()
    tagger, artefact = _load(path, variant, threads)
    load_seconds = time.perf_counter() - started
    corpus = corpora.load(corpus_name)
    test = corpus.splits["test"]
    tokens = [s.tokens for s in test]
    n_tokens = sum(map(len, tokens))
    predicted = evaluate.predict_tags(tagger, test, batch_size)  # also the warm-up
    f1 = score([s.tags for s in test], predicted, types=set(corpus.types)).micro_f1
    run = _tagger_fn(tagger, batch_size)
    speeds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        run(tokens)
        speeds.append(n_tokens / (time.perf_counter() - clock))
    one = [tokens[min(range(len(tokens)), key=lambda i: abs(len(tokens[i]) - 20))]]
    latencies = []
    for _ in range(20):
        clock = time.perf_counter()
        run(one)
        latencies.append((time.perf_counter() - clock) * 1000)
    median = statistics.median(speeds)
    return {"tokens_per_second": round(median), "spread": round((max(speeds) - min(speeds)) / median, 3),
            "runs_tokens_per_second": [round(s) for s in speeds], "latency_ms": round(statistics.median(latencies), 2),
            "f1": round(f1, 4), "size_bytes": _size(artefact), "load_seconds": round(load_seconds, 2),
            "tokens": n_tokens, "batch_size": batch_size, "threads": threads}


def _child(name: str, family: str, path: Path, variant: str, args: argparse.Namespace) -> dict | None:
    """Run `measure` in a child process (which reports its own peak RSS). None (with a note) if it failed.

    The ONNX variant is exported by a child of its own first, so that its measurement never imports torch.
    """
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": str(args.threads),
           "SWENER_LAZY": "1"}  # `import swener` would import Flair; the Flair loader registers its classes itself
    measured = path
    if variant == "onnx":
        measured = Path(tempfile.mkdtemp(prefix="swener-bench-")) / "export"
        done = subprocess.run([sys.executable, "-m", "swener.serve.bench", "_export", str(path), str(measured)],
                              capture_output=True, env=env)
        if done.returncode:
            print(f"note: {name} could not be exported: {done.stderr.decode(errors='replace')[-300:]}",
                  file=sys.stderr)
            return None
        measured = Path(done.stdout.decode().strip().splitlines()[-1])
    command = [sys.executable, "-m", "swener.serve.bench", "_measure", str(measured), "--variant", variant,
               "--corpus", args.corpus, "--repeats", str(args.repeats), "--batch-size", str(args.batch_size),
               "--threads", str(args.threads)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = child.communicate()
    if variant == "onnx" and measured.parent.name.startswith("swener-bench-"):
        shutil.rmtree(measured.parent, ignore_errors=True)
    if child.returncode:
        print(f"note: {name} {variant} failed: {err.decode(errors='replace').strip().splitlines()[-1:]}",
              file=sys.stderr)
        return None
    result = json.loads(out.decode().strip().splitlines()[-1])
    result.update(name=name, family=family, variant=variant, path=str(path), peak_rss_mb=result.pop("peak_rss_mb"))
    return result


def default_models() -> list[tuple[str, str, Path]]:
    """(name, family, path) of the teacher and the four student families that `swener models` lists."""
    from swener.serve import names as models

    found = []
    for name in ("teacher", *models.FAMILIES):
        entry, _ = models.choose(models.entries_for(name))  # a family's name: its best on dev, plain or KD
        if entry is not None:
            found.append((name, "teacher" if name == "teacher" else name, entry.path))
        else:
            print(f"note: no trained {name} under {models.models_dir()}/: left out", file=sys.stderr)
    return found


def bench_all(args: argparse.Namespace) -> dict:
    """Every model at every variant, one child process each, in one run."""
    chosen = []
    for spec in args.model or []:
        name, _, path = spec.partition("=")
        family = "teacher" if name.startswith("teacher") else name.removesuffix("-plain")
        chosen.append((name, family, Path(path)))
    chosen = chosen or default_models()
    variants = [v for v in (getattr(args, "variants", None) or VARIANTS) if v != "bf16" or args.bf16]
    rows = []
    for name, family, path in chosen:
        for variant in (["float32"] if family == "teacher" else variants):
            print(f"{name} {variant} ...", file=sys.stderr, flush=True)
            row = _child(name, family, path, variant, args)
            if row is not None:
                rows.append(row)
                print(f"  {row['tokens_per_second']:,} tokens/s (spread {row['spread']:.0%}), "
                      f"{row['latency_ms']} ms, {row['peak_rss_mb']} MB, F1 {row['f1']}", file=sys.stderr)
    teacher = next((r for r in rows if r["family"] == "teacher"), None)
    for row in rows:
        row["times_teacher"] = round(row["tokens_per_second"] / teacher["tokens_per_second"], 1) if teacher else None
    return {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "corpus": args.corpus, "split": "test",
            "machine": f"{platform.node()} ({os.cpu_count()} cores, {platform.processor() or platform.machine()})",
            "load_average_at_end": round(os.getloadavg()[0], 2), "repeats": args.repeats,
            "command": "python -m swener.serve.bench " + " ".join(sys.argv[1:]), "models": rows}


# --------------------------------------------------------------------------- agreement and training epochs


def agreement(path: Path, corpus_name: str, batch_size: int = 32) -> dict:
    """Tags of Flair's own path against the lean path, `tag_tokens` and the ONNX export, on the same model file."""
    import torch
    from flair.data import Sentence

    from swener.data import corpora
    from swener.data.tags import flair_iob2
    from swener.eval.evaluate import predict_tags
    from swener.eval.scoring import score
    from swener.serve import names as models

    torch.set_num_threads(1)
    corpus = corpora.load(corpus_name)
    test = corpus.splits["test"]
    tagger = models.load_tagger(str(path), engine="flair")
    tagger.lean = False
    sentences = [Sentence(s.tokens) for s in test]
    clock = time.perf_counter()
    tagger.predict(sentences, mini_batch_size=batch_size)
    flair_seconds = time.perf_counter() - clock
    reference = [flair_iob2(fs, len(s.tokens)) for fs, s in zip(sentences, test)]
    tagger.lean = True
    clock = time.perf_counter()
    variants = {"lean predict": predict_tags(tagger, test, batch_size)}
    lean_seconds = time.perf_counter() - clock
    onnx, _ = _load(path, "onnx", 1)
    variants["onnx"] = predict_tags(onnx, test, batch_size)
    n = sum(len(s.tokens) for s in test)
    out: dict[str, Any] = {"model": str(path), "tokens": n, "flair_path_f1": round(
        score([s.tags for s in test], reference, types=set(corpus.types)).micro_f1, 4),
        "flair_predict_tokens_per_second": round(n / flair_seconds),
        "lean_predict_tokens_per_second": round(n / lean_seconds)}
    for name, tags in variants.items():
        same = sum(a == b for x, y in zip(reference, tags) for a, b in zip(x, y))
        out[name] = {"identical_tokens": same, "share": round(same / n, 6),
                     "f1": round(score([s.tags for s in test], tags, types=set(corpus.types)).micro_f1, 4)}
    return out


# the training paths `epoch` compares: (Flair's batch path?, length buckets?, packed LSTM?)
EPOCH_PATHS = {"flair": (True, False, True), "lean": (False, False, True), "lean+buckets": (False, True, True),
               "lean+buckets+two-runs": (False, True, False)}


def epoch_times(family: str, embeddings: Path, corpus_name: str, threads: int, epochs: int = 1,
                seeds: tuple[int, ...] = (1,), paths: tuple[str, ...] = tuple(EPOCH_PATHS)) -> dict:
    """Seconds per epoch of Flair's trainer and dev F1 for each training path, from the same start per seed.

    `flair` is Flair's own batch path; `lean` the students' lean batch path (the previous
    round's default); `+buckets` adds length-bucketed batches, `+two-runs` the BiLSTM's
    two unidirectional runs instead of a packed sequence (this round's default).
    """
    import flair
    import torch
    from flair.trainers import ModelTrainer

    from swener import config
    from swener.data import corpora
    from swener.students.tagger import build_student
    from swener.train.buckets import LengthBuckets
    from swener.vectors.embeddings import CompactFastTextEmbeddings

    torch.set_num_threads(threads)
    corpus = corpora.load(corpus_name)
    flair_corpus = corpora.to_flair(corpus)
    flair_corpus = flair.data.Corpus(train=flair_corpus.train, dev=flair_corpus.dev, test=None,
                                     sample_missing_splits=False)
    out: dict[str, Any] = {"family": family, "threads": threads, "epochs": epochs, "seeds": list(seeds),
                           "train_sentences": len(flair_corpus.train)}
    runs: dict[str, list[tuple[float, float]]] = {path: [] for path in paths}
    for seed in seeds:
        for path in paths:
            flair_path, buckets, packed = EPOCH_PATHS[path]
            flair.set_seed(seed)
            student = build_student(family, CompactFastTextEmbeddings(embeddings), corpus.types)
            student.lean = not flair_path
            if hasattr(student.encoder_net, "packed"):
                student.encoder_net.packed = packed
            sampler = {"sampler": LengthBuckets(config.STUDENT_BATCH, seed=seed)} if buckets else {}
            with tempfile.TemporaryDirectory(prefix="swener-epoch-") as folder:
                clock = time.perf_counter()
                ModelTrainer(student, flair_corpus).train(folder, learning_rate=config.STUDENT_LR,
                                                          mini_batch_size=config.STUDENT_BATCH,
                                                          max_epochs=epochs, embeddings_storage_mode="cpu",
                                                          save_final_model=False, **sampler)
                seconds = time.perf_counter() - clock
                header, *rows = (Path(folder) / "loss.tsv").read_text().splitlines()
                dev = float(rows[-1].split("\t")[header.split("\t").index("DEV_F1")])
            runs[path].append((seconds / epochs, dev))
            log.info("%s seed %d: %.1f s per epoch, dev F1 %.4f", path, seed, seconds / epochs, dev)
    for path, values in runs.items():
        f1s = [f1 for _, f1 in values]
        out[path] = {"seconds_per_epoch": [round(s, 1) for s, _ in values], "dev_f1": f1s,
                     "dev_f1_mean": round(statistics.mean(f1s), 4),
                     "dev_f1_sd": round(statistics.stdev(f1s), 4) if len(f1s) > 1 else None}
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line of the benchmark."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_measure"]:
        parser = argparse.ArgumentParser()
        parser.add_argument("path", type=Path)
        parser.add_argument("--variant", choices=VARIANTS, default="float32")
        parser.add_argument("--corpus", default="webbnyheter2012")
        parser.add_argument("--repeats", type=int, default=5)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--threads", type=int, default=1)
        a = parser.parse_args(argv[1:])
        result = measure(a.path, a.variant, a.corpus, a.repeats, a.batch_size, a.threads)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return
    if argv[:1] == ["_export"]:
        print(_export(Path(argv[1]), Path(argv[2])))
        return
    if argv[:1] == ["agreement"]:
        parser = argparse.ArgumentParser(prog="swener.serve.bench agreement")
        parser.add_argument("model", type=Path)
        parser.add_argument("--corpus", default="webbnyheter2012")
        a = parser.parse_args(argv[1:])
        print(json.dumps(agreement(a.model, a.corpus), indent=2))
        return
    if argv[:1] == ["epoch"]:
        parser = argparse.ArgumentParser(prog="swener.serve.bench epoch")
        parser.add_argument("family")
        parser.add_argument("--embeddings", type=Path, required=True)
        parser.add_argument("--corpus", default="webbnyheter2012")
        parser.add_argument("--threads", type=int, default=1)
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--seeds", type=lambda text: tuple(int(x) for x in text.split(",")), default=(1,))
        parser.add_argument("--paths", type=lambda text: tuple(text.split(",")), default=tuple(EPOCH_PATHS),
                            help=f"comma-separated subset of {','.join(EPOCH_PATHS)}")
        a = parser.parse_args(argv[1:])
        print(json.dumps(epoch_times(a.family, a.embeddings, a.corpus, a.threads, a.epochs, a.seeds, a.paths),
                         indent=2))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", help="NAME=PATH (repeatable); default: the short names")
    parser.add_argument("--corpus", default="webbnyheter2012")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bf16", action="store_true", help="also the bf16 autocast variant of each student")
    parser.add_argument("--variants", type=lambda text: text.split(","), default=None,
                        help="comma-separated subset of float32,onnx,int8,bf16 for the students")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    result = bench_all(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(result['models'])} measurements)", file=sys.stderr)


if __name__ == "__main__":
    main()
