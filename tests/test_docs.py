"""The user documents (README.md, docs/*.md; not the notebook) stay true to the code.

Every `make` target named in a shell code block exists (`make -n` with that line's variables exits
0), every `swener` command and sub-command answers `--help`, every `python -m swener...` module is
importable, every relative link (and its #anchor in a markdown file) resolves, and the README fits
its budget of lines. A failure names the file, the line and the command or link.
"""
from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swener.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # docs/notebook/ is the dated log
README_MAX_LINES = 250
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console", "zsh"}
SEPARATORS = {";", "&&", "||", "|", "&"}
MAKE_TIMEOUT = 60  # seconds for one `make -n` (the full profile's Makefile reads in about 3 s)
MAKE_OPTIONS_WITH_VALUE = {"-C", "-f", "-o", "-I", "-W", "--directory", "--file"}
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w+-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


@dataclass(frozen=True)
class Command:
    """One command of a shell code block: where it is written and its words."""

    file: Path
    line: int
    text: str
    words: tuple[str, ...]

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}: `{self.text}`"


def code_blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """The fenced code blocks of a markdown file: (language, line number of the first code line, lines)."""
    blocks, current, fence, language, start = [], None, "", "", 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = FENCE.match(line)
        if current is None and match:
            current, fence, language, start = [], match.group(1), match.group(2).lower(), number + 1
        elif current is not None and line.strip().startswith(fence) and not line.strip()[len(fence):].strip():
            blocks.append((language, start, current))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def logical_lines(start: int, lines: list[str]) -> list[tuple[int, str]]:
    """Lines with their backslash continuations joined, each with the number of its first line."""
    out, pending, first = [], "", start
    for number, line in enumerate(lines, start):
        if not pending:
            first = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = ""
    if pending:
        out.append((first, pending))
    return out


def split_words(text: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ; && || | &), comments dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands, words = [], []
    for token in lexer:
        if token in SEPARATORS:
            commands.append(words)
            words = []
        else:
            words.append(token)
    return [c for c in [*commands, words] if c]


def shell_commands(path: Path) -> list[Command]:
    """The make, swener and `python -m swener...` commands in a file's shell code blocks."""
    found = []
    for language, start, lines in code_blocks(path):
        if language not in SHELL_LANGUAGES:
            continue
        for number, line in logical_lines(start, lines):
            text = re.sub(r"^\s*\$\s+", "", line).strip()
            try:
                commands = split_words(text)
            except ValueError as err:  # unbalanced quotes: a broken example
                found.append(Command(path, number, text, ("<unparsable>", str(err))))
                continue
            for words in commands:
                while words and VARIABLE.match(words[0]):  # environment assignments before the command
                    words = words[1:]
                if words and Path(words[0]).name in ("make", "swener") or words[:2] == ["python", "-m"] \
                        or (words and Path(words[0]).name == "python" and words[1:2] == ["-m"]):
                    found.append(Command(path, number, text.split("#")[0].strip() or text, tuple(words)))
    return found


def make_arguments(words: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The variables (VAR=VALUE) and targets of a make command line; other options are dropped."""
    variables, targets, skip = [], [], False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in MAKE_OPTIONS_WITH_VALUE:
            skip = True
        elif word.startswith("-"):
            continue
        elif VARIABLE.match(word):
            variables.append(word)
        else:
            targets.append(word)
    return tuple(variables), tuple(targets)


@lru_cache(maxsize=None)
def make_dry_run(variables: tuple[str, ...], targets: tuple[str, ...]) -> tuple[int, str]:
    """Exit status and the last lines of `make -n -C ROOT VARIABLES TARGETS` (cached per distinct call)."""
    try:
        done = subprocess.run(["make", "-n", "-C", str(ROOT), *variables, *targets], capture_output=True,
                              text=True, timeout=MAKE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {MAKE_TIMEOUT} s"
    return done.returncode, "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])


def swener_problem(words: tuple[str, ...]) -> str | None:
    """Why `swener WORDS` names no existing (sub-)command, or None when `--help` of it answers."""
    command: click.Command = main
    path: list[str] = []
    for word in words[1:]:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        if word not in command.commands:
            known = ", ".join(sorted(command.commands))
            return f"`{' '.join(['swener', *path])}` has no command {word!r} (it has: {known})"
        command = command.commands[word]
        path.append(word)
    result = CliRunner().invoke(main, [*path, "--help"])
    if result.exit_code != 0:
        return f"`swener {' '.join(path)} --help` exited with {result.exit_code}: {result.output.strip()[-200:]}"
    return None


def module_problem(words: tuple[str, ...]) -> str | None:
    """Why `python -m MODULE` would not find its module, or None."""
    module = words[2] if len(words) > 2 else ""
    if not module.startswith("swener"):
        return None
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    return None if found else f"no module {module}"


def heading_anchors(path: Path) -> set[str]:
    """GitHub's anchors of a markdown file's headings (outside code blocks)."""
    anchors, in_code = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = re.sub(r"[`*_]", "", line.lstrip("#").strip()).lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def links(path: Path) -> list[tuple[int, str]]:
    """The link and image targets of a markdown file outside code blocks and code spans, with line numbers."""
    found, in_code = [], False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            found += [(number, m.group(1)) for m in LINK.finditer(re.sub(r"`[^`]*`", "", line))]
    return found


def link_problem(path: Path, target: str) -> str | None:
    """Why a relative link of `path` does not resolve (a missing file, or a missing #anchor), or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto: ...
        return None
    file_part, _, anchor = target.partition("#")
    resolved = (path.parent / file_part).resolve() if file_part else path
    if not resolved.exists():
        return f"{file_part} does not exist ({resolved})"
    if anchor and resolved.is_file() and resolved.suffix == ".md" and anchor not in heading_anchors(resolved):
        return f"{file_part or path.name} has no heading for #{anchor}"
    return None


def doc_id(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module")
def make_results() -> dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[int, str]]:
    """`make -n` of every make command in the documents: one call for all the targets named with the same
    variables (the Makefile is read once per call, about 3 s), each command alone only where that fails."""
    calls = {make_arguments(c.words) for path in DOCS for c in shell_commands(path) if Path(c.words[0]).name == "make"}
    groups: dict[tuple[str, ...], set[str]] = {}
    for variables, targets in calls:
        if targets:
            groups.setdefault(variables, set()).update(targets)
    with ThreadPoolExecutor(max_workers=8) as pool:  # reading the Makefile mostly waits for its $(shell) calls
        together = dict(zip(groups, pool.map(lambda v: make_dry_run(v, tuple(sorted(groups[v]))), groups)))
    return {(variables, targets): together[variables] if targets and together[variables][0] == 0
            else make_dry_run(variables, targets) for variables, targets in calls}


def test_readme_fits_its_budget() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines, at most {README_MAX_LINES}"


def test_the_parser_finds_commands_links_and_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# A title, with `code`\n\n[x](other.md#a-title-with-code) `[y](ignored.md)`\n\n"
                    "```sh\nSEEDS=1 make -C . bilstm QUICK=1 \\\n  STUDENT_EPOCHS=2  # a comment\n"
                    "cat a.txt | .venv/bin/swener tag bilstm-crf - && echo done\n```\n\n"
                    "```python\nmake = 'not shell'\n```\n", encoding="utf-8")
    (tmp_path / "other.md").write_text("# A title, with `code`\n", encoding="utf-8")
    commands = shell_commands(page)
    assert [(c.line, c.words[0]) for c in commands] == [(6, "make"), (8, ".venv/bin/swener")]
    assert make_arguments(commands[0].words) == (("QUICK=1", "STUDENT_EPOCHS=2"), ("bilstm",))
    assert links(page) == [(3, "other.md#a-title-with-code")]
    assert link_problem(page, "other.md#a-title-with-code") is None
    assert "no heading" in link_problem(page, "other.md#elsewhere")
    assert "does not exist" in link_problem(page, "missing.md")


def test_the_checks_catch_what_does_not_exist() -> None:
    assert make_dry_run(("QUICK=1",), ("no-such-target-anywhere",))[0] != 0
    assert make_dry_run(("QUICK=1",), ("experiment",))[0] == 0
    assert "no command 'no-such-command'" in swener_problem(("swener", "no-such-command"))
    assert "has no command 'nope'" in swener_problem(("swener", "teacher", "nope", "--x"))
    assert swener_problem(("swener", "teacher", "train", "--corpus", "x")) is None
    assert module_problem(("python", "-m", "swener.no_such_module")) is not None


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_make_targets_in_the_docs_exist(path: Path, make_results) -> None:
    problems = []
    for command in shell_commands(path):
        if Path(command.words[0]).name != "make":
            continue
        status, tail = make_results[make_arguments(command.words)]
        if status != 0:
            problems.append(f"{command.where()}\n    make -n exited with {status}: {tail}")
    assert not problems, "make commands that do not run:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_swener_commands_in_the_docs_exist(path: Path) -> None:
    problems = []
    for command in shell_commands(path):
        name = Path(command.words[0]).name
        problem = (swener_problem(command.words) if name == "swener" else
                   module_problem(command.words) if name == "python" else
                   command.words[1] if command.words[0] == "<unparsable>" else None)
        if problem:
            problems.append(f"{command.where()}\n    {problem}")
    assert not problems, "commands that do not exist:\n" + "\n".join(problems)


@pytest.mark.parametrize("path", DOCS, ids=doc_id)
def test_relative_links_resolve(path: Path) -> None:
    problems = [f"{doc_id(path)}:{number}: ({target}) {problem}" for number, target in links(path)
                if (problem := link_problem(path, target))]
    assert not problems, "links that do not resolve:\n" + "\n".join(problems)
