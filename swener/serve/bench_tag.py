"""Benchmark `swener tag`: throughput after start-up, start-up time, peak memory.

    python -m swener.serve.bench_tag MODEL [--size-mb 1] [--runs 3] [--json OUT]
    python -m swener.serve.bench_tag compare MODEL... --base WORKTREE --json OUT   # issue 38, one run

Builds about 1 MB of Swedish text from the first lines of the shared regeringen.txt.gz,
then runs the real command line as a child process: once on an empty file (start-up:
Python, flair, the model) and once on the text. Tokens/s after start-up is
tokens / (time on the text - start-up time). Peak memory is the child's maximum
resident set size (from wait4; /usr/bin/time -v reports the same figure).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

from swener.config import REPO_ROOT
from swener.files import open_text

DATA = Path(os.environ.get("SWENER_DATA", REPO_ROOT.parent / "shared" / "data"))
DEFAULT_TEXT = DATA / "text" / "regeringen.txt.gz"


def swener_command() -> list[str]:
    """The installed `swener` entry point next to this Python, else `python -c` on it."""
    script = Path(sys.executable).with_name("swener")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import swener_cli; swener_cli.main()"]


def timed(args: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (with its worker processes) and peak RSS in MB of one command.

    Peak RSS is the largest sum over the process and its children, sampled every 20 ms (wait4's
    figure is the largest single process, which undercounts worker processes).
    """
    import psutil

    before = psutil.Process().cpu_times()
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert child.stderr is not None
    peak, watched = 0, psutil.Process(child.pid)
    while child.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [watched, *watched.children(recursive=True)]))
        except psutil.Error:  # a process ended while it was read
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    err = child.stderr.read()
    if child.returncode:
        raise SystemExit(f"failed ({child.returncode}): {' '.join(args)}\n{err.decode(errors='replace')}")
    after = psutil.Process().cpu_times()
    cpu = after.children_user + after.children_system - before.children_user - before.children_system
    return seconds, cpu, peak / 2**20


def count_tokens(conll: Path) -> tuple[int, int]:
    """Tokens and sentences of a CoNLL output file."""
    tokens = sentences = 0
    with open(conll, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                tokens += 1
            else:
                sentences += 1
    return tokens, sentences


def bench(model: str, text: Path, runs: int, batch_size: int, threads: int, work: Path, engine: str = "auto",
          command: list[str] | None = None, env: dict | None = None, extra: Sequence[str] = ()) -> dict:
    """Start-up and full runs of `swener tag`, `runs` times each; medians.

    Besides wall time it reports tokens per CPU-second after start-up: on cores shared with
    other jobs that is close to what an idle machine gives on one thread.
    """
    empty, out = work / "empty.txt", work / "out.conll"
    empty.write_text("", encoding="utf-8")
    base = [*(command or swener_command()), "tag", model, "--batch-size", str(batch_size), "--threads", str(threads),
            "--engine", engine, *extra]
    startups, fulls, peaks, startup_cpu, full_cpu = [], [], [], [], []
    for _ in range(runs):
        seconds, cpu, _ = timed([*base, str(empty), "-o", str(work / "empty.out")], env)
        startups.append(seconds)
        startup_cpu.append(cpu)
        seconds, cpu, rss = timed([*base, str(text), "-o", str(out)], env)
        fulls.append(seconds)
        full_cpu.append(cpu)
        peaks.append(rss)
    tokens, sentences = count_tokens(out)
    startup, full = statistics.median(startups), statistics.median(fulls)
    tagging_cpu = statistics.median(full_cpu) - statistics.median(startup_cpu)
    return {
        "model": model, "engine": engine, "text_bytes": text.stat().st_size, "tokens": tokens, "sentences": sentences,
        "batch_size": batch_size, "threads": threads, "runs": runs,
        "startup_seconds": round(startup, 2), "total_seconds": round(full, 2),
        "tokens_per_second_after_startup": round(tokens / max(full - startup, 1e-9)),
        "tokens_per_second_end_to_end": round(tokens / full),
        "tokens_per_cpu_second_after_startup": round(tokens / max(tagging_cpu, 1e-9)),
        "startup_cpu_seconds": round(statistics.median(startup_cpu), 2),
        "peak_rss_mb": round(max(peaks), 1),
        "startup_runs": [round(s, 2) for s in startups], "total_runs": [round(s, 2) for s in fulls],
        "machine": f"{platform.node()} ({os.cpu_count()} cores), load average {os.getloadavg()[0]:.1f}",
        "targets": {"tokens_per_second_after_startup": 30_000, "startup_seconds_exported": 2},
    }


def repeat_text(source: Path, target: Path, size_bytes: int) -> int:
    """Write the lines of `source` (.txt or .txt.gz) to `target` until about `size_bytes`, from the start again
    if it runs out; returns the bytes written."""
    written = 0
    with open(target, "w", encoding="utf-8", newline="\n") as out:
        while written < size_bytes:
            with open_text(source) as lines:
                for line in lines:
                    if written >= size_bytes:
                        break
                    out.write(line)
                    written += len(line.encode("utf-8"))
    return written


def onnx_model_only(folder: Path, precision: str, repeats: int = 3, batch_size: int = 32) -> dict:
    """`swener.serve.bench`'s model-only protocol for an export folder: tag_tokens over the test split, one
    thread, median of `repeats` passes after a warm-up."""
    from swener.data import corpora
    from swener.serve.onnx import OnnxTagger

    tokens = [s.tokens for s in corpora.load("webbnyheter2012").splits["test"] if s.tokens]
    n = sum(map(len, tokens))
    tagger = OnnxTagger(folder, precision=precision)
    tagger.tag_tokens(tokens, batch_size)
    speeds = []
    for _ in range(repeats):
        clock = time.perf_counter()
        tagger.tag_tokens(tokens, batch_size)
        speeds.append(n / (time.perf_counter() - clock))
    return {"tokens_per_second": round(statistics.median(speeds)), "runs": [round(x) for x in speeds]}


def _child_json(args: list[str]) -> dict | None:
    """The last line of a child Python's stdout as JSON; None (with a note) if it failed."""
    env = {**os.environ, "SWENER_LAZY": "1", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], capture_output=True, env=env)
    if done.returncode:
        print(f"note: {' '.join(args)} failed: {done.stderr.decode(errors='replace')[-300:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.decode().strip().splitlines()[-1])


def compare(models: Sequence[str], base: Path, source: Path, sizes_mb: Sequence[float], runs: int, work: Path
            ) -> dict:
    """One run of everything issue 38 asks: per model, model-only tokens/s per precision, then `swener tag`
    end to end on each text size with today's code (`base`, a worktree of the commit before) and the new one."""
    from swener.serve import names
    from swener.serve.onnx import default_folder, is_export

    texts = {}
    for size in sizes_mb:
        texts[size] = work / f"text-{size:g}mb.txt"
        repeat_text(source, texts[size], int(size * 1_000_000))
    # `python -c` puts the working directory first on sys.path, so the base goes before it, and is checked
    before_cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(Path(base).resolve())!r}); "
                  "import swener, swener_cli; assert swener.__file__.startswith(sys.path[0]), swener.__file__; "
                  "swener_cli.main()"]
    before_env = {**os.environ, "PYTHONPATH": str(base), "SWENER_LAZY": "1"}
    rows = []
    for model in models:
        path = names.resolve(model)
        pt = path / "best-model.pt" if path.is_dir() and not is_export(path) else path
        folder = path if is_export(path) else default_folder(pt)
        if not is_export(folder):
            raise SystemExit(f"{model}: no export at {folder}; run `swener export {model}` first")
        row: dict = {"model": model, "pt": str(pt), "export": str(folder), "model_only_tokens_per_second": {}}
        for variant in ("float32", "bf16", "int8"):
            if pt.suffix == ".pt" and pt.is_file():
                found = _child_json(["-m", "swener.serve.bench", "_measure", str(pt), "--variant", variant,
                                     "--repeats", str(runs)])
                if found:
                    row["model_only_tokens_per_second"][f"torch_{variant}"] = found["tokens_per_second"]
        for precision in ("float32", "int8"):
            found = _child_json(["-m", "swener.serve.bench_tag", "_model_only", str(folder), precision])
            if found:
                row["model_only_tokens_per_second"][f"onnx_{precision}"] = found["tokens_per_second"]
        check = _child_json(["-m", "swener.serve.precision_check", str(folder)])  # writes precision.json: the default
        row["dev_check"] = check
        fastest = max(row["model_only_tokens_per_second"].items(), key=lambda kv: kv[1], default=(None, 0))
        row["fastest_model_only"] = {"variant": fastest[0], "tokens_per_second": fastest[1]}
        row["end_to_end"] = {}
        outputs = {}
        for size, text in texts.items():
            repeats = runs if size <= 1 else 1
            for label, cmd, env, extra in (("before_onnx_float32", before_cmd, before_env, ()),
                                           ("new_float32", None, None, ("--precision", "float32")),
                                           ("new_auto", None, None, ())):
                if label == "new_float32" and size > 1:
                    continue  # only for the identity check
                place = work / f"{Path(model).name}-{label}-{size:g}"
                place.mkdir(exist_ok=True)
                result = bench(str(folder), text, repeats, 64, 1, place, "onnx", cmd, env, extra)
                outputs[(label, size)] = place / "out.conll"
                row["end_to_end"][f"{label}_{size:g}mb"] = result
        small = min(texts)
        row["new_float32_identical_to_before"] = (outputs[("new_float32", small)].read_bytes()
                                                  == outputs[("before_onnx_float32", small)].read_bytes())
        large = max(texts)
        new, old = row["end_to_end"][f"new_auto_{large:g}mb"], row["end_to_end"][f"before_onnx_float32_{large:g}mb"]
        row["ratio_end_to_end_to_fastest_model_only"] = round(
            new["tokens_per_second_end_to_end"] / max(fastest[1], 1), 2)
        row["speedup_end_to_end_new_over_before"] = round(
            new["tokens_per_second_end_to_end"] / max(old["tokens_per_second_end_to_end"], 1), 2)
        rows.append(row)
    return {"created": time.strftime("%Y-%m-%d %H:%M:%S"), "base": str(base), "source": str(source),
            "machine": f"{platform.node()} ({os.cpu_count()} cores), load average {os.getloadavg()[0]:.1f}",
            "sizes_mb": list(sizes_mb), "models": rows}


def table(result: dict) -> str:
    """The markdown table of a `compare` result."""
    lines = ["| model | model-only tokens/s | fastest | e2e before (1 MB / 30 MB) | e2e new | ratio | speed-up "
             "| start-up before / new | peak RSS MB before / new (1 / 30 MB) | same output |",
             "|:--|:--|--:|--:|--:|--:|--:|--:|--:|:--|"]
    for row in result["models"]:
        e2e = row["end_to_end"]
        sizes = [f"{s:g}mb" for s in result["sizes_mb"]]

        def get(label: str, key: str) -> str:
            return " / ".join(str(e2e.get(f"{label}_{s}", {}).get(key, "-")) for s in sizes)

        only = ", ".join(f"{k} {v:,}" for k, v in row["model_only_tokens_per_second"].items())
        lines.append(f"| {row['model']} | {only} | {row['fastest_model_only']['tokens_per_second']:,} | "
                     f"{get('before_onnx_float32', 'tokens_per_second_end_to_end')} | "
                     f"{get('new_auto', 'tokens_per_second_end_to_end')} | "
                     f"{row['ratio_end_to_end_to_fastest_model_only']} | {row['speedup_end_to_end_new_over_before']} | "
                     f"{e2e[f'before_onnx_float32_{sizes[0]}']['startup_seconds']} / "
                     f"{e2e[f'new_auto_{sizes[0]}']['startup_seconds']} | "
                     f"{get('before_onnx_float32', 'peak_rss_mb')} ; {get('new_auto', 'peak_rss_mb')} | "
                     f"{row['new_float32_identical_to_before']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line of the benchmark."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_model_only"]:
        print(json.dumps(onnx_model_only(Path(argv[1]), argv[2])))
        return
    if argv[:1] == ["compare"]:
        parser = argparse.ArgumentParser(prog="swener.serve.bench_tag compare")
        parser.add_argument("models", nargs="+", help="short names, .pt files or export folders")
        parser.add_argument("--base", type=Path, required=True, help="a worktree of the commit before (today's code)")
        parser.add_argument("--text", type=Path, default=DEFAULT_TEXT)
        parser.add_argument("--sizes-mb", type=lambda t: [float(x) for x in t.split(",")], default=[1.0, 30.0])
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--json", type=Path, required=True)
        a = parser.parse_args(argv[1:])
        with tempfile.TemporaryDirectory(prefix="swener-bench-tag-") as folder:
            result = compare(a.models, a.base.resolve(), a.text, a.sizes_mb, a.runs, Path(folder))
        from swener.atomic import write_json

        write_json(a.json, result)
        print(table(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a .pt file or a short name (bilstm-crf, ...)")
    parser.add_argument("--text", type=Path, default=Path(os.environ.get("SWENER_BENCH_TEXT", DEFAULT_TEXT)),
                        help="Swedish text to take the first lines from (.txt or .txt.gz)")
    parser.add_argument("--size-mb", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="passed to swener tag --threads")
    parser.add_argument("--engine", choices=["auto", "flair", "onnx"], default="auto", help="passed to swener tag")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if not args.text.is_file():
        raise SystemExit(f"{args.text}: no such file; give --text")
    with tempfile.TemporaryDirectory(prefix="swener-bench-") as folder:
        work = Path(folder)
        text = work / "bench.txt"
        repeat_text(args.text, text, int(args.size_mb * 1_000_000))
        result = bench(args.model, text, args.runs, args.batch_size, args.threads, work, args.engine)
    result["source"] = str(args.text)
    print(json.dumps(result, indent=2))
    print(f"{result['tokens']} tokens in {result['text_bytes'] / 1e6:.2f} MB: "
          f"{result['tokens_per_second_after_startup']} tokens/s after start-up "
          f"({result['tokens_per_second_end_to_end']} end to end, {result['tokens_per_cpu_second_after_startup']} "
          f"per CPU-second), start-up {result['startup_seconds']} s, "
          f"peak {result['peak_rss_mb']} MB", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
