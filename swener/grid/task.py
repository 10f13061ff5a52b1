"""What a grid task runs on its worker: a step's commands, with its log, a fault for tests.

The commands run in the grid's folder as child processes that die with their worker
(PR_SET_PDEATHSIG on Linux), so a killed worker leaves no orphan writing into a run folder;
`mkdir -p`, `cp` (with globs) and `touch` are done here rather than by a shell.
"""
from __future__ import annotations

import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from swener.grid.plan import Step

BUILTINS = ("mkdir", "cp", "touch")


@dataclass(frozen=True)
class Fault:
    """A fault injected for tests: the worker of a matching step kills itself once its command has started.

    `always`: on every attempt (the step fails for good), else on the first attempt only.
    """

    pattern: str
    always: bool = False

    @classmethod
    def parse(cls, text: str | None) -> "Fault | None":
        if not text:
            return None
        pattern, _, mode = text.partition(":")
        return cls(pattern, mode == "always")


def _resolve(command: tuple[str, ...]) -> list[str]:
    """The command with `swener` as this environment's program and `pip` as this Python's pip."""
    bin_dir = Path(sys.executable).parent
    swener = [str(bin_dir / "swener")] if (bin_dir / "swener").exists() else \
        [sys.executable, "-c", "from swener_cli import main; main()"]
    words: list[str] = []
    for position, word in enumerate(command):
        if word == "swener" and (position == 0 or command[0] == "nice"):
            words += swener
        elif word == "pip" and position == 0:
            words += [sys.executable, "-m", "pip"]
        else:
            words.append(word)
    return words


def _builtin(command: tuple[str, ...], root: Path) -> None:
    """mkdir -p, cp (with globs) and touch, done here rather than by a shell."""
    name, *args = command
    if name == "mkdir":
        for arg in args[1:] if args[:1] == ["-p"] else args:
            (root / arg).mkdir(parents=True, exist_ok=True)
    elif name == "touch":
        for arg in args:
            (root / arg).touch()
    else:
        *sources, dest = args
        files = [f for s in sources for f in (sorted(glob.glob(str(root / s))) if "*" in s else [str(root / s)])]
        for source in files:
            shutil.copy(source, root / dest)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the worker that started it dies (Linux), so no orphan keeps writing."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the command's process group, SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


class StepFailed(RuntimeError):
    """A step's command exited with an error (its message: the command, the exit code, the log)."""


def execute(step: Step, root: str, log: str, env: dict, fault: Fault | None) -> dict:
    """Run a step's commands (the body of the Ray task); returns its timing and, for students, dev F1."""
    root_path, log_file = Path(root), Path(log)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    attempt = 1 + attempts(log_file)
    started = time.time()
    with open(log_file, "a") as out:
        out.write(f"=== attempt {attempt} of {step.name} on {socket.gethostname()} "
                  f"at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        out.flush()
        for command in step.commands:
            out.write(f"$ {shlex.join(command)}\n")
            out.flush()
            if command[0] in BUILTINS:
                _builtin(command, root_path)
                continue
            proc = subprocess.Popen(_resolve(command), cwd=root_path, env={**os.environ, **env}, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            try:
                if fault and fault.pattern in step.name and (fault.always or attempt == 1):
                    _inject(step, root_path, proc, out)
                code = proc.wait()
            except BaseException:  # cancelled (KeyboardInterrupt) or the worker is going down
                _stop(proc)
                raise
            if code != 0:
                raise StepFailed(f"`{short(command)}` exited with {code} (log {log_file})")
    seconds = time.time() - started
    result = {"seconds": seconds, "started": started, "attempt": attempt, "node": socket.gethostname()}
    if step.kind == "student":
        result["dev_f1"] = dev_f1(root_path / step.target)
    return result


def _inject(step: Step, root: Path, proc: subprocess.Popen, out: TextIO) -> None:
    """The injected fault: once the command has started writing (its .partial folder) kill this worker."""
    partial = root / (step.out_dir + ".partial")
    deadline = time.time() + 300
    while not partial.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    out.write("=== injected fault: killing the worker\n")
    out.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def dev_f1(results_json: Path) -> float | None:
    """The micro F1 on the corpus's dev split in a student's results.json."""
    try:
        results = json.loads(results_json.read_text())
        corpus = results.get("corpus") or results.get("settings", {}).get("corpus")
        scores = results["scores"]
        key = f"{corpus}/dev" if f"{corpus}/dev" in scores else next(k for k in scores if k.endswith("/dev"))
        return float(scores[key]["micro_f1"])
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return None


def short(command: tuple[str, ...], limit: int = 400) -> str:
    """The command on one line (at most `limit` characters)."""
    text = " ".join(shlex.join(command).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def attempts(log: Path) -> int:
    """Attempts at the step since the grid last submitted it (the log's last `=== grid` line)."""
    if not log.exists():
        return 0
    return log.read_text(errors="replace").rpartition("=== grid ")[2].count("=== attempt ")
