"""Benchmark `swener tag`: throughput after start-up, start-up time, peak memory.

    python -m swener.serve.bench_tag MODEL [--size-mb 1] [--runs 3] [--json OUT]

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

from swener.config import REPO_ROOT
from swener.files import open_text

DATA = Path(os.environ.get("SWENER_DATA", REPO_ROOT.parent / "shared" / "data"))
DEFAULT_TEXT = DATA / "text" / "regeringen.txt.gz"


def build_text(source: Path, target: Path, size_bytes: int) -> int:
    """Write the first lines of `source` (.txt or .txt.gz) to `target` until about `size_bytes`; returns bytes."""
    written = 0
    with open_text(source) as lines, open(target, "w", encoding="utf-8", newline="\n") as out:
        for line in lines:
            if written >= size_bytes:
                break
            out.write(line)
            written += len(line.encode("utf-8"))
    return written


def swener_command() -> list[str]:
    """The installed `swener` entry point next to this Python, else `python -c` on it."""
    script = Path(sys.executable).with_name("swener")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import swener_cli; swener_cli.main()"]


def timed(args: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process (wait4); stops if the command fails."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"failed ({child.returncode}): {' '.join(args)}\n{err.decode(errors='replace')}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


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


def bench(model: str, text: Path, runs: int, batch_size: int, threads: int, work: Path, engine: str = "auto") -> dict:
    """Start-up and full runs of `swener tag`, `runs` times each; medians.

    Besides wall time it reports tokens per CPU-second after start-up: on cores shared with
    other jobs that is close to what an idle machine gives on one thread.
    """
    empty, out = work / "empty.txt", work / "out.conll"
    empty.write_text("", encoding="utf-8")
    base = [*swener_command(), "tag", model, "--batch-size", str(batch_size), "--threads", str(threads),
            "--engine", engine]
    startups, fulls, peaks, startup_cpu, full_cpu = [], [], [], [], []
    for _ in range(runs):
        seconds, cpu, _ = timed([*base, str(empty), "-o", str(work / "empty.out")])
        startups.append(seconds)
        startup_cpu.append(cpu)
        seconds, cpu, rss = timed([*base, str(text), "-o", str(out)])
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


def main(argv: list[str] | None = None) -> None:
    """Command line of the benchmark."""
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
        build_text(args.text, text, int(args.size_mb * 1_000_000))
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
