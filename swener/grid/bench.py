"""`make bench-grid`: the same students through `make -jN` and through `swener grid` on a local Ray.

Both routes run in fresh folders under build/bench-grid/ that share (by symlink, read only)
the teacher, its caches and the embeddings of the working directory, with STUDENT_THREADS=1,
back to back. Written: the wall time of each, the F1 agreement of their runs, Ray's start-up,
the dispatch latency of its tasks (task start minus submission, for tasks that did not wait
for a free CPU) and the peak memory of Ray's own processes (raylet, GCS, idle workers).
Meant for a quiet machine: the figures mean nothing next to other jobs.

    python -m swener.grid.bench --makefile Makefile --jobs 2 --out results/quick/bench-grid.json -- QUICK=1 ...
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path


def ray_rss_mb() -> float:
    """The resident memory of Ray's processes (not the commands they run), in MB."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "ray::" not in cmdline and "/ray/" not in cmdline:
                continue
            status = (proc / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _sample_peak(stop: threading.Event, peak: list[float]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], ray_rss_mb())
        stop.wait(2.0)


def _f1s(root: Path) -> dict[str, list[float]]:
    runs = {}
    for results in sorted(root.glob("models/*/*/*/seed-*/results.json")):
        if results.parts[-5] == "teacher":
            continue
        scores = json.loads(results.read_text())["scores"]
        runs[str(results.parent.relative_to(root))] = [row["micro_f1"] for key, row in sorted(scores.items())]
    return runs


def _fresh_root(path: Path, work: Path) -> Path:
    """A folder of its own for the students and the report; the teacher, caches, embeddings and wheels shared."""
    shutil.rmtree(path, ignore_errors=True)
    (path / "models").mkdir(parents=True)
    (path / "build").mkdir()
    for shared in ("models/teacher", "softlabels", "embeddings", "build/wheels"):
        if (work / shared).exists():
            (path / shared).symlink_to(work / shared)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--makefile", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("variables", nargs="*", help="Make variables (after --)")
    args = parser.parse_args(argv)
    work = Path.cwd()
    variables = [*args.variables, "STUDENT_THREADS=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result: dict = {"about": "make -j vs swener grid (local Ray), the same students, back to back",
                    "variables": variables, "jobs": args.jobs, "cores": os.cpu_count(),
                    "load_before": os.getloadavg()}

    by_make = _fresh_root(work / "build" / "bench-grid" / "make", work)
    started = time.perf_counter()
    # -o: the venv running this is never remade (a checkout whose setup.cfg is newer than its bin/swener
    # would otherwise reinstall swener into it, from that checkout)
    run = subprocess.run(["make", "-f", str(args.makefile.resolve()), f"-j{args.jobs}", f"VENV={sys.prefix}",
                          "-o", f"{sys.prefix}/bin/swener", *variables, "experiment"], cwd=by_make, env=env,
                         capture_output=True, text=True)
    result["make_seconds"] = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
        return 1

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.jobs, include_dashboard=False, object_store_memory=256 * 2 ** 20, log_to_driver=False)
    result["ray_init_seconds"] = time.perf_counter() - started
    time.sleep(2)
    result["ray_idle_rss_mb"] = ray_rss_mb()
    ray.shutdown()

    by_ray = _fresh_root(work / "build" / "bench-grid" / "ray", work)
    summary = by_ray / "grid-summary.json"
    stop, peak = threading.Event(), [0.0]
    sampler = threading.Thread(target=_sample_peak, args=(stop, peak), daemon=True)
    sampler.start()
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", "from swener_cli import main; main()", "grid", "--root", str(by_ray),
                          "--cpus", str(args.jobs), "--summary", str(summary), *variables],
                         env=env, capture_output=True, text=True)
    result["ray_seconds"] = time.perf_counter() - started
    stop.set()
    sampler.join()
    result["ray_peak_rss_mb"] = peak[0]
    if run.returncode != 0:
        print(run.stdout[-2000:], run.stderr[-2000:], file=sys.stderr)
        return 1
    steps = [s for s in json.loads(summary.read_text())["steps"] if s["status"] == "done"]
    latency = [s["started"] - s["submitted"] for s in steps if s["started"] - s["submitted"] < 5]
    result["tasks"] = len(steps)
    result["dispatch_latency_seconds"] = {"median": statistics.median(latency) if latency else None,
                                          "max": max(latency) if latency else None, "n": len(latency)}
    result["overhead_per_task_seconds"] = (result["ray_seconds"] - result["make_seconds"]) / max(len(steps), 1)
    make_f1, ray_f1 = _f1s(by_make), _f1s(by_ray)
    result["runs"] = len(make_f1)
    result["same_folders_and_f1"] = make_f1 == ray_f1
    result["load_after"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if result["same_folders_and_f1"] else 1


if __name__ == "__main__":
    sys.exit(main())
