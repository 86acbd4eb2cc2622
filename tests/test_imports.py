"""The shape of the code: no import cycles in `digest/`, and imports only point down.

Every import counts, at module level or inside a function (a lazy import keeps start-up
fast, but must not hide a cycle), under TYPE_CHECKING too. Units are the top-level
modules and packages of `digest`; a unit may import its own modules and the units below
it in LAYERS, never one above it or beside it.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

DIGEST = Path(__file__).resolve().parent.parent / "digest"

#: Lowest first. `pipeline` is the only unit that knows the order of the stages (ingest,
#: send, publish); the CLI, the scheduler and the web pages call it.
LAYERS = [
    "digest",  # the package's own __init__
    "digest.errors",
    "digest.memory",
    "digest.text",
    "digest.model",
    "digest.due",
    "digest.keywords",
    "digest.codec",
    "digest.frozen",
    "digest.sources",
    "digest.rank",
    "digest.config",
    "digest.store",
    "digest.tokens",
    "digest.links",
    "digest.deliver",
    "digest.render",
    "digest.compose",
    "digest.plan",
    "digest.bridges",
    "digest.window",
    "digest.whynot",
    "digest.ingest",
    "digest.subscriptions",
    "digest.bulk",
    "digest.enrol",
    "digest.dispatch",
    "digest.send",
    "digest.dayindex",
    "digest.publish",
    "digest.pipeline",
    "digest.work",
    "digest.web",
    "digest.serve",
    "digest.schedule",
    "digest.tasks",
    "digest.cli",
    "digest.__main__",
]


@functools.cache
def modules() -> dict[str, Path]:
    found = {}
    for path in DIGEST.rglob("*.py"):
        parts = path.relative_to(DIGEST.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The digest modules `name` imports anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # `from digest.x import y` imports the module digest.x.y when there is one
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.startswith("digest") and target != name:
                out.add(target)
    return out


@functools.cache
def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walker_sees_every_kind_of_import() -> None:
    known = {"digest.a": Path("a"), "digest.b": Path("b"), "digest.c": Path("c")}
    src = "import digest.b\nfrom typing import TYPE_CHECKING\ndef f():\n    from digest import c\n"
    path = DIGEST.parent / ".imports-probe.py"
    try:
        path.write_text(src, encoding="utf-8")
        assert imports_of("digest.a", path, known) == {"digest.b", "digest.c"}
    finally:
        path.unlink()


def test_find_cycle_finds_a_cycle_and_only_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles_in_digest() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(m) for m in modules()}
    assert units - set(LAYERS) == set(), "add new modules to LAYERS in tests/test_imports.py"


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module: str) -> None:
    mine = LAYERS.index(unit_of(module))
    upward = sorted(
        target
        for target in graph()[module]
        if unit_of(target) != unit_of(module) and LAYERS.index(unit_of(target)) >= mine
    )
    assert not upward, f"{module} imports {upward}: at or above its layer in LAYERS"
