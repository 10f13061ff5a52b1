"""The package's shape: subpackages along the data flow, each importing only downwards, no cycle.

The import graph is read from the source with `ast` (imports inside functions count too), so a
cycle hidden in a function body fails here as well as one at module level.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swener"
# Lowest first: a module may import its own layer and the layers before it. The top-level
# modules (config, errors, atomic, files, batching, runs) are the base, below every subpackage.
LAYERS = ("data", "vectors", "kd", "eval", "train", "teacher", "students", "report", "serve", "grid", "cli")
SHIMS = {"swener.taggers", "swener.teacher_tagger", "swener.embeddings", "swener.bench", "swener.bench_tag"}
ENTRY = {"swener"}  # swener/__init__.py imports the Flair classes to register them
MAX_LINES = 400


def module_files(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package at `root`."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package modules that `name` imports anywhere in its file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    root = next(iter(modules)).split(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import swener.kd.loss.x` -> the module part
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] == root and target != name:
                found.add(target)
    return found


def problems(root: Path, layers: tuple[str, ...] = LAYERS, shims: set[str] = frozenset(),
             entry: set[str] = frozenset()) -> list[str]:
    """Upward imports, imports of compatibility shims, and import cycles in the package at `root`."""
    def rank_of(name: str) -> int:
        parts = name.split(".")
        return layers.index(parts[1]) + 1 if len(parts) > 1 and parts[1] in layers else 0

    modules = module_files(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    found = []
    for name, targets in graph.items():
        if name in shims or name in entry:
            continue
        for target in sorted(targets):
            if target in shims:
                found.append(f"{name} imports the compatibility shim {target}")
            elif rank_of(target) > rank_of(name) and target not in entry:
                found.append(f"upward import: {name} ({rank_of(name)}) imports {target} ({rank_of(target)})")
    # cycles: depth-first search over the graph without the entry point and the shims
    edges = {n: [t for t in ts if t not in entry and t not in shims] for n, ts in graph.items()
             if n not in entry and n not in shims}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in edges.get(node, []):
            if state.get(target) == 1:
                found.append("import cycle: " + " -> ".join(stack[stack.index(target):] + [target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    return found


def test_no_upward_import_and_no_cycle():
    assert problems(PACKAGE, LAYERS, SHIMS, ENTRY) == []


def test_every_layer_is_a_package_and_the_shims_exist():
    folders = {p.parent for p in PACKAGE.rglob("*.py")} - {PACKAGE}
    missing = sorted(str(f.relative_to(PACKAGE)) for f in folders if not (f / "__init__.py").is_file())
    assert missing == [], f"folders without __init__.py (setuptools' find: would leave them out): {missing}"
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} == set(LAYERS)
    modules = module_files(PACKAGE)
    assert SHIMS <= set(modules)
    for shim in SHIMS:  # a shim only re-exports: a docstring and imports (and a __main__ guard)
        assert len(modules[shim].read_text().splitlines()) <= 6, shim


@pytest.mark.parametrize("name", sorted(module_files(PACKAGE)))
def test_no_module_above_the_line_limit(name):
    lines = len(module_files(PACKAGE)[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name}: {lines} lines (at most {MAX_LINES}); split it along its jobs"


def test_the_checker_finds_cycles_hidden_in_functions_and_upward_imports(tmp_path):
    root = tmp_path / "pkg"
    for folder in ("low", "high"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "base.py").write_text("X = 1\n")
    (root / "low" / "a.py").write_text("from pkg.low import b\n")
    (root / "low" / "b.py").write_text("def f():\n    from pkg.low.a import g\n")  # a cycle inside a function
    (root / "high" / "c.py").write_text("from pkg import base\nfrom ..low import a\n")  # relative, downwards: fine
    (root / "low" / "d.py").write_text("def f():\n    import pkg.high.c\n")  # upwards
    (root / "old.py").write_text("from pkg.low.a import g\n")
    (root / "low" / "e.py").write_text("from pkg import old\n")
    found = problems(root, ("low", "high"), {"pkg.old"})
    assert "upward import: pkg.low.d (1) imports pkg.high.c (2)" in found
    assert "pkg.low.e imports the compatibility shim pkg.old" in found
    assert any(line.startswith("import cycle: pkg.low.a -> pkg.low.b -> pkg.low.a") for line in found)
    assert len(found) == 3, found
