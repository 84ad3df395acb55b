"""The shape of the code, checked: one package per feature in cobranza/, imports that point one
way (no cycles, accounts never imports cobranza), and a function-level import only where a
comment says why it cannot be at the top."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("accounts", "cobranza", "morosos")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT)
            if "migrations" in rel.parts:
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, ast.stmt, ast.FunctionDef | None]]:
    """(imported project module, import node, enclosing function or None) for every import."""
    tree = ast.parse(path.read_text())
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []

    def targets(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        base = node.module or ""
        if node.level:
            prefix = package[: len(package) - (node.level - 1)]
            base = ".".join([*prefix, *([node.module] if node.module else [])])
        return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else function
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.extend((target, child, function) for target in targets(child))
            visit(child, inner)

    visit(tree, None)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in MODULES.items():
        for target, _node, _function in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in [*graph, *MODULES]:
        if module not in index:
            connect(module)
    return cycles


def test_the_project_has_no_import_cycles_even_through_function_level_imports():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_accounts_never_imports_cobranza():
    offending = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("accounts")
        for target, _node, _function in _imports(name, path)
        if target == "cobranza" or target.startswith("cobranza.")
    ]
    assert offending == []


def test_every_function_level_import_says_why_it_is_not_at_the_top():
    unexplained = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        for _target, node, function in _imports(name, path):
            if function is None:
                continue
            # The reason is a comment saying "imported here", on the import line or anywhere in
            # the function before it (one comment may cover a block of imports).
            before = lines[function.lineno - 1 : node.end_lineno]
            if not any("imported here" in line.lower() for line in before if "#" in line):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert sorted(set(unexplained)) == []


# What may stay at cobranza's top: the app's own wiring, its models and Celery tasks, what every
# feature shares (report exports, rules, the texts it writes, the demo hook); everything else
# lives in a feature.
COBRANZA_TOP = {
    *("__init__.py", "admin.py", "apps.py", "demo.py", "exports.py"),
    *("models.py", "rules.py", "tasks.py", "texts.py", "urls.py"),
}


def test_cobranza_has_one_package_per_feature_and_no_suffixed_modules_at_its_top():
    top = {p.name for p in (ROOT / "cobranza").glob("*.py")}
    assert top <= COBRANZA_TOP, sorted(top - COBRANZA_TOP)


def test_the_time_is_read_from_the_one_clock():
    """docs/domain.md#one-clock: a replay stamps what it writes with the moment it runs at, so
    no module reads the wall clock around ``accounts.clock``."""
    wall = re.compile(r"\btimezone\.now\b|\btimezone\.localdate\(\)|\bdatetime\.now\(|\bdt\.datetime\.now\(")
    offenders = []
    for name, path in MODULES.items():
        # The cache's expiry is the machine's business, not a stamp of the simulated day.
        if name in ("accounts.clock", "morosos.cache") or ".migrations." in name:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if wall.search(line.split("#", 1)[0]):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "read accounts.clock.now()/localdate() instead:\n" + "\n".join(offenders)
