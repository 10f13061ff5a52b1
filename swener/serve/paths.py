"""The inputs of `swener tag` (files, folders, stdin) and, with an output folder, an output file for each.

Every check runs before the model loads and before anything is written, and every refusal is
one SwenerError: a missing input, an empty folder, two inputs for one output, an output that
is an input, an output folder inside an input folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from swener.errors import SwenerError
from swener.serve.formats import EXTENSIONS


@dataclass(frozen=True)
class Input:
    """One input file and its name under an output folder."""

    path: str  # the file to read, as given or found ("-": stdin)
    name: str  # a file argument's base name, or the path under the folder argument it was found in
    folder: str | None = None  # that folder argument


@dataclass
class Plan:
    """The checked inputs and where their output goes: one file each (`targets`), else all to `out` (or stdout)."""

    inputs: list[Input]
    out: Path | None = None
    targets: list[Path] | None = None


def _hidden(name: str) -> bool:
    return name.startswith(".")


def files_under(folder: str) -> list[str]:
    """Every non-hidden regular file under a folder (hidden folders skipped), sorted by path under it."""
    found: list[tuple[tuple[str, ...], str]] = []
    for root, dirs, names in os.walk(folder):  # symbolic links to folders are not followed: no loops
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in names:
            path = os.path.join(root, name)
            if not _hidden(name) and os.path.isfile(path):
                found.append((Path(os.path.relpath(path, folder)).parts, path))
    return [path for _, path in sorted(found)]


def find_inputs(args: Sequence[str]) -> list[Input]:
    """The input files that file and folder arguments (and "-", stdin) stand for, in order."""
    inputs: list[Input] = []
    for arg in args:
        if arg == "-":
            inputs.append(Input("-", "<stdin>"))
        elif os.path.isdir(arg):
            files = files_under(arg)
            if not files:
                raise SwenerError(f"{arg}: a folder with no files to tag (hidden files and folders are skipped)")
            inputs += [Input(path, os.path.relpath(path, arg), arg) for path in files]
        elif os.path.isfile(arg):
            inputs.append(Input(arg, os.path.basename(arg)))
        else:
            raise SwenerError(f"{arg}: no such file or folder")
    if sum(i.path == "-" for i in inputs) > 1:
        raise SwenerError("stdin (-) can be read only once")
    return inputs


def _file_id(path: str | Path) -> tuple[int, int] | None:
    """What makes a file itself (device, inode; the same through symbolic and hard links); None if none exists."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def plan_outputs(args: Sequence[str], out: Path | None = None, out_dir: Path | None = None,
                 output_format: str = "conll") -> Plan:
    """Check inputs and outputs before anything is loaded or written: every refusal is one SwenerError."""
    inputs = find_inputs(args)
    if out is not None and out_dir is not None:
        raise SwenerError("give either -o FILE (all inputs in one output) or --out-dir DIR (one output per "
                          "input), not both")
    if output_format == "html" and out_dir is None and len(inputs) != 1:
        raise SwenerError(f"--format html writes one page per input, and there are {len(inputs)} inputs: "
                          "give --out-dir DIR (or a single input file)")
    by_id = {_file_id(i.path): i.path for i in reversed(inputs) if i.path != "-"}
    read = {key for key in by_id if key is not None}
    if out is not None:
        if out.is_dir():
            raise SwenerError(f"{out}: is a folder; -o takes a file name (--out-dir takes a folder)")
        if not (out.parent if str(out.parent) else Path(".")).is_dir():
            raise SwenerError(f"{out.parent}: no such folder for the output file")
        if _file_id(out) in read:
            raise SwenerError(f"{out}: the output file is also an input ({by_id[_file_id(out)]}); tagging would "
                              "replace the input: write the output to another file")
    if out_dir is None:
        return Plan(inputs, out)
    return Plan(inputs, targets=_targets(inputs, out_dir, output_format, read))


def _targets(inputs: list[Input], out_dir: Path, output_format: str, read: set[tuple[int, int]]) -> list[Path]:
    """One output file per input under `out_dir`; refuses stdin, collisions and anything that would touch an
    input."""
    if out_dir.exists() and not out_dir.is_dir():
        raise SwenerError(f"{out_dir}: not a folder; --out-dir takes a folder (made if missing)")
    if any(i.path == "-" for i in inputs):
        raise SwenerError("--out-dir names each output after its input, and stdin (-) has no name: "
                          "save it to a file first, or use -o FILE")
    where = out_dir.resolve()
    for folder in dict.fromkeys(i.folder for i in inputs if i.folder is not None):
        inside = Path(folder).resolve()
        if where == inside or inside in where.parents:
            raise SwenerError(f"--out-dir {out_dir} is inside the input folder {folder}: the outputs would be "
                              "read as inputs next time; choose a folder outside it")
    targets, seen = [], {}
    for item in inputs:
        target = out_dir / (item.name + EXTENSIONS[output_format])
        if target in seen:
            raise SwenerError(f"{target}: two inputs would be written here ({seen[target]} and {item.path}); "
                              "give them to separate runs with separate --out-dir folders")
        seen[target] = item.path
        if _file_id(target) in read:
            raise SwenerError(f"{target}: the output file is an input ({item.path} would replace it); "
                              "choose another --out-dir")
        if target.is_dir():
            raise SwenerError(f"{target}: a folder where the output for {item.path} goes; move it or choose "
                              "another --out-dir")
        for parent in (out_dir / p for p in Path(item.name).parents[:-1]):
            if parent.exists() and not parent.is_dir():
                raise SwenerError(f"{parent}: a file where a folder of outputs goes; move it or choose "
                                  "another --out-dir")
        targets.append(target)
    return targets


def input_size(path: str) -> int | None:
    """The bytes a file will give when read: its size, a .gz file's recorded size; None for stdin."""
    if path == "-":
        return None
    try:
        if not path.endswith(".gz"):
            return os.path.getsize(path)
        with open(path, "rb") as handle:  # gzip's last 4 bytes: the size modulo 2^32 (of the last member)
            handle.seek(-4, os.SEEK_END)
            return int.from_bytes(handle.read(4), "little")
    except OSError:
        return None
