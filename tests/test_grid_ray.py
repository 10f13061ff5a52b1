"""The grid's runner on a local Ray with steps that train nothing: order, retries, failures, Ctrl-C, resume.

Fast enough for CI (a Ray start and a few Python processes); the tiny-profile comparison with
the Make route is the slow test in test_grid.py.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from swener.grid.plan import Plan, Step

pytest.importorskip("ray")

# a run like swener's: written in <out>.partial, then swapped in, its target written last
RUN = textwrap.dedent("""
    import os, sys, time
    out, seconds, code = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out + ".partial", exist_ok=True)
    time.sleep(seconds)
    if code:
        sys.exit(code)
    open(os.path.join(out + ".partial", "results.json"), "w").write('{"scores": {"c/dev": {"micro_f1": 0.5}}}')
    os.rename(out + ".partial", out)
""")


def _step(name: str, seconds: float = 0.0, code: int = 0, needs: tuple[str, ...] = ()) -> Step:
    return Step(name=name, kind="student", target=f"runs/{name}/results.json", needs=needs, family=name, mode="kd",
                seed=1, commands=((sys.executable, "-c", RUN, f"runs/{name}", str(seconds), str(code)),))


def _plan(*steps: Step) -> Plan:
    return Plan(variables={"STUDENT_THREADS": "1"}, steps=list(steps))


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module's in-process grids (each call would start its own otherwise)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_runner_order_retries_failures_and_resume(tmp_path, local_ray):
    from swener.grid.ray_runner import Fault, run_grid

    plan = _plan(_step("a"), _step("b", seconds=4.0, needs=("runs/a/results.json",)), _step("c", code=3),
                 _step("d", needs=("runs/c/results.json",)))
    lines: list[str] = []
    summary = run_grid(plan, tmp_path, cpus=2, object_store_mb=100, retries=1, fault=Fault("b"), echo=lines.append)
    status = {o.step.name: o for o in summary.outcomes}
    assert {name: o.status for name, o in status.items()} == {"a": "done", "b": "done", "c": "failed",
                                                              "d": "blocked"}
    assert status["b"].attempts == 2 and status["a"].attempts == 1  # b's worker was killed once, then retried
    assert status["b"].started >= status["a"].finished - 1  # b ran after the step it needs
    assert status["a"].dev_f1 == 0.5
    assert any(re.match(r"\[\d/4\] a kd seed 1, dev F1 0.5000, \d+\.\d min(; 1 failed)?$", line) for line in lines)
    assert "exited with 3" in status["c"].error and status["c"].attempts == 2
    text = "\n".join(summary.lines())
    assert "2 done, 0 skipped" in text and "1 failed, 1 not run" in text and f"log: {status['c'].log}" in text
    assert "    command: " in text
    assert "=== attempt 2" in Path(status["c"].log).read_text()
    assert not (tmp_path / "runs" / "c").exists() and (tmp_path / "runs" / "c.partial").is_dir()

    again = run_grid(plan, tmp_path, cpus=2, object_store_mb=100, retries=0, echo=lines.append)
    assert {o.step.name: o.status for o in again.outcomes} == {"a": "skipped", "b": "skipped", "c": "failed",
                                                              "d": "blocked"}
    done = _plan(_step("a"), _step("b", needs=("runs/a/results.json",)))
    assert run_grid(done, tmp_path, cpus=2, echo=lines.append).ok and lines[-1].startswith("grid: nothing to do")


def test_ctrl_c_stops_the_running_command_and_a_rerun_resumes(tmp_path):
    script = tmp_path / "grid.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if started in the background
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_grid_ray import _plan, _step
        from swener.grid.ray_runner import run_grid
        plan = _plan(_step("quick"), _step("slow", seconds=120))
        summary = run_grid(plan, {str(tmp_path)!r}, cpus=2, object_store_mb=100, retries=2)
        print("\\n".join(summary.lines()), flush=True)
        sys.exit(130 if summary.interrupted else 0)
    """))
    grid = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    partial = tmp_path / "runs" / "slow.partial"
    deadline = time.time() + 120
    while not partial.exists() and time.time() < deadline and grid.poll() is None:
        time.sleep(0.5)
    assert partial.exists(), grid.communicate()[0]
    time.sleep(1)
    grid.send_signal(signal.SIGINT)
    out, _ = grid.communicate(timeout=90)
    assert grid.returncode == 130, out
    assert "interrupted" in out
    assert (tmp_path / "runs" / "quick" / "results.json").is_file()
    assert not (tmp_path / "runs" / "slow").exists()  # stopped: nothing that looks finished
    children = subprocess.run(["pgrep", "-f", "runs/slow 120"], capture_output=True, text=True).stdout.split()
    assert children == [], "the stopped command is still running"
