"""Running the plan's steps as Ray tasks: declared resources, explicit order, bounded retries.

A step whose target exists is skipped (unless a step it needs runs now, as Make would rerun
it). The others are submitted as Ray tasks once every step they need has finished: CPU
threads per task (the students' STUDENT_THREADS, `teacher_cpus` for the teacher's steps) and
a GPU for the teacher's steps when the cluster has one. Each task runs the step's commands
in the grid's folder, its output in `logs/grid/<step>.log`, and is retried at most `retries`
times by Ray when the command fails or its worker dies. A command killed mid-way leaves no
finished-looking folder: the commands write `<out>.partial` and swap it in at the end
(swener.train), and the child process dies with its worker (PR_SET_PDEATHSIG on Linux).
Ctrl-C (or SIGTERM) cancels the running tasks (their commands get SIGTERM, then SIGKILL) and shuts Ray
down; a rerun resumes from the finished targets.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Callable

from swener.grid.plan import TEACHER_KINDS, Plan, Step
from swener.grid.task import Fault, StepFailed, attempts, execute, short

DEFAULT_OBJECT_STORE_MB = 256  # the grid passes file paths, not arrays: a small store is plenty


@dataclass
class Outcome:
    """What became of one step."""

    step: Step
    status: str  # done, skipped, failed, blocked (a step it needs failed), cancelled
    seconds: float = 0.0
    attempts: int = 0
    dev_f1: float | None = None
    log: str | None = None
    error: str | None = None
    submitted: float | None = None
    started: float | None = None
    finished: float | None = None


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return not self.interrupted and not any(o.status in ("failed", "blocked", "cancelled") for o in self.outcomes)

    def lines(self) -> list[str]:
        lines = [f"grid: {self.count('done')} done, {self.count('skipped')} skipped (finished before), "
                 f"{self.count('failed')} failed, {self.count('blocked')} not run (a step they need failed)"
                 + (f", {self.count('cancelled')} cancelled (interrupted)" if self.interrupted else "")
                 + f"; {self.wall_seconds / 60:.1f} min"]
        for o in self.outcomes:
            if o.status == "failed":
                lines.append(f"  failed: {o.step.name} after {o.attempts} attempt(s): {o.error}")
                lines.append(f"    command: {short(o.step.commands[0])}")
                lines.append(f"    log: {o.log}")
        return lines

    def as_json(self) -> dict:
        return {"interrupted": self.interrupted, "wall_seconds": self.wall_seconds, "steps": [
            {"name": o.step.name, "kind": o.step.kind, "target": o.step.target, "status": o.status,
             "seconds": o.seconds, "attempts": o.attempts, "dev_f1": o.dev_f1, "log": o.log, "error": o.error,
             "submitted": o.submitted, "started": o.started, "finished": o.finished} for o in self.outcomes]}


def log_path(root: Path, step: Step) -> Path:
    """logs/grid/<step name>-<hash of its target>.log: one per target, kept across attempts and reruns."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", step.name).strip("-")
    return root / "logs" / "grid" / f"{slug}-{hashlib.sha1(step.target.encode()).hexdigest()[:8]}.log"


def pending_steps(plan: Plan, root: Path) -> tuple[list[Step], list[Step]]:
    """(steps to run, steps skipped): a step runs when its target is missing or a step it needs runs."""
    run: set[str] = set()
    for step in plan.steps:  # in dependency order
        if not (root / step.target).exists() or any(need in run for need in step.needs):
            run.add(step.target)
    return [s for s in plan.steps if s.target in run], [s for s in plan.steps if s.target not in run]


def start_ray(address: str | None, cpus: int | None, object_store_mb: int) -> ModuleType:
    """Connect to a cluster (`address` or RAY_ADDRESS), else start a local Ray with a capped object store.

    A Ray this process has already started is used as it is.
    """
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 object_store_memory=object_store_mb * 1024 * 1024)
    return ray


def run_grid(plan: Plan, root: Path, *, address: str | None = None, cpus: int | None = None,
             teacher_cpus: int = 2, object_store_mb: int = DEFAULT_OBJECT_STORE_MB, retries: int = 2,
             fault: Fault | None = None, echo: Callable[[str], None] = print) -> Summary:
    """Run the plan's pending steps on Ray (skipping finished ones); the summary of what became of each."""
    root = Path(root).resolve()
    started = time.time()
    to_run, skipped = pending_steps(plan, root)
    summary = Summary([Outcome(step, "skipped") for step in skipped])
    if not to_run:
        echo(f"grid: nothing to do ({len(skipped)} steps finished before)")
        return summary
    echo(f"grid: {len(to_run)} steps to run, {len(skipped)} finished before")
    import ray as _ray

    owned = not _ray.is_initialized()  # shut down at the end only a Ray started here
    ray = start_ray(address, cpus, object_store_mb)
    from ray.exceptions import RayError

    try:
        node_cpus = max(node["Resources"].get("CPU", 1) for node in ray.nodes() if node.get("Alive"))
        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(execute)
        outcome = {step.target: Outcome(step, "waiting", log=str(log_path(root, step))) for step in to_run}
        summary.outcomes += outcome.values()
        waiting = {step.target: step for step in to_run}
        finished_targets = {step.target for step in skipped}
        running: dict = {}
        count = 0
        extra_env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "SWENER_LAZY": "1",
                     **{k: os.environ[k] for k in ("SWENER_DATA", "PYTHONPATH") if k in os.environ}}

        def submit_ready() -> None:
            for target, step in list(waiting.items()):
                if all(need in finished_targets for need in step.needs):
                    threads = min(_threads(step, plan, teacher_cpus), node_cpus)
                    use_gpu = step.kind in TEACHER_KINDS and gpus >= 1
                    log = Path(outcome[target].log)
                    log.parent.mkdir(parents=True, exist_ok=True)
                    with open(log, "a") as out:
                        out.write(f"=== grid {time.strftime('%Y-%m-%d %H:%M:%S')}: {threads:g} CPU"
                                  f"{', 1 GPU' if use_gpu else ''}, at most {retries} retries\n")
                    ref = task.options(num_cpus=threads, num_gpus=1 if use_gpu else 0, max_retries=retries,
                                       retry_exceptions=True, name=step.name).remote(
                        step, str(root), outcome[target].log, {**extra_env, "OMP_NUM_THREADS": str(int(threads))},
                        fault)
                    running[ref] = step
                    outcome[target].submitted = time.time()
                    del waiting[target]

        def block_dependents(failed: str) -> None:
            for target, step in list(waiting.items()):
                if failed in step.needs:
                    outcome[target].status = "blocked"
                    del waiting[target]
                    block_dependents(target)

        def stop(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        try:  # a scheduler's SIGTERM stops the grid as Ctrl-C does (main thread only)
            previous = signal.signal(signal.SIGTERM, stop)
        except ValueError:
            previous = None
        try:
            submit_ready()
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    step = running.pop(ref)
                    o = outcome[step.target]
                    o.finished = time.time()
                    count += 1
                    try:
                        result = ray.get(ref)
                    except (RayError, StepFailed) as err:
                        o.status, o.error = "failed", _one_line(err)
                        o.attempts = attempts(Path(o.log))
                        block_dependents(step.target)
                        echo(f"[{count}/{len(to_run)}] FAILED {step.name} ({o.error}); log {o.log}")
                    else:
                        o.status, o.seconds, o.attempts = "done", result["seconds"], result["attempt"]
                        o.started, o.dev_f1 = result["started"], result.get("dev_f1")
                        finished_targets.add(step.target)
                        echo(_progress(count, len(to_run), o, summary))
                submit_ready()
        except KeyboardInterrupt:
            summary.interrupted = True
            echo(f"grid: interrupted; stopping {len(running)} running steps")
            for ref in running:
                ray.cancel(ref)
            deadline = time.time() + 20
            while running and time.time() < deadline:
                ready, _ = ray.wait(list(running), num_returns=len(running), timeout=1)
                for ref in ready:
                    running.pop(ref)
            for o in outcome.values():
                if o.status == "waiting":
                    o.status = "cancelled"
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    finally:
        if owned:
            ray.shutdown()
        summary.wall_seconds = time.time() - started
    return summary


def _threads(step: Step, plan: Plan, teacher_cpus: int) -> float:
    if step.kind == "student":
        return float(plan.variables["STUDENT_THREADS"])
    if step.kind in TEACHER_KINDS or step.kind == "embeddings":
        return float(teacher_cpus)
    return 1.0


def _one_line(err: BaseException) -> str:
    """The failing command and exit code for a StepFailed inside a RayTaskError, else the error's first line."""
    text = str(err)
    found = re.search(r"StepFailed: (.*)", text)
    if found:
        return found.group(1).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:300] if lines else type(err).__name__


def _progress(count: int, total: int, o: Outcome, summary: Summary) -> str:
    """One line per finished step: family, mode, seed and dev F1 for students; the running counts."""
    step = o.step
    what = f"{step.family} {step.mode} seed {step.seed}" if step.kind == "student" else step.name
    f1 = f", dev F1 {o.dev_f1:.4f}" if o.dev_f1 is not None else ""
    retried = f", attempt {o.attempts}" if o.attempts > 1 else ""
    failed = summary.count("failed")
    return f"[{count}/{total}] {what}{f1}, {o.seconds / 60:.1f} min{retried}" + (f"; {failed} failed" if failed else "")
