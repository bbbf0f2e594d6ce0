"""The layout holds: every module imports, no import cycle, a provider's insides stay in its folder,
one reader of summary.json, and the runbooks never probe a target to learn it is a sandbox."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import tokenize
from pathlib import Path

import runbook_lib

PACKAGE = Path(runbook_lib.__file__).resolve().parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(runbook_lib.__path__, "runbook_lib."))


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """runbook_lib modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_of(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and module_level_only:  # `if TYPE_CHECKING:` imports nothing
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if candidate in MODULES else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "runbook_lib" or m.startswith("runbook_lib.")}


def _sources() -> dict[str, Path]:
    return {_module_of(p): p for p in PACKAGE.rglob("*.py")}


def test_every_module_imports():
    for name in MODULES:
        importlib.import_module(name)


def test_no_import_cycle_between_modules():
    """Module-level imports (what runs at import time) form no cycle."""
    graph = {
        name: _imports(path, module_level_only=True) - {name} for name, path in _sources().items()
    }

    def parents(module: str) -> set[str]:  # importing a.b.c runs a and a.b first
        parts = module.split(".")
        return {".".join(parts[:i]) for i in range(1, len(parts))}

    edges = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    visiting, done, cycles = set(), set(), []

    def walk(node: str, trail: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append(trail[trail.index(node) :] + [node])
            return
        visiting.add(node)
        for target in sorted(edges[node] - parents(node)):
            walk(target, [*trail, target])
        visiting.discard(node)
        done.add(node)

    for module in sorted(edges):
        walk(module, [module])
    assert cycles == []


def test_nothing_outside_a_provider_imports_its_insides():
    """Only the registry names providers.redcloud (as a string); no import reaches into it."""
    offenders = []
    for name, path in _sources().items():
        if name.startswith("runbook_lib.providers.redcloud"):
            continue
        inside = {m for m in _imports(path, module_level_only=False) if ".providers.redcloud" in m}
        if inside:
            offenders.append((name, sorted(inside)))
    assert offenders == []


def test_provider_wire_names_appear_outside_its_folder_only_in_docstrings():
    pattern = re.compile(r"whoami|numberId|/api/core")
    offenders = []
    for name, path in _sources().items():
        if name.startswith("runbook_lib.providers.redcloud"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        offenders += [
            (name, node.lineno, node.value[:60])
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and pattern.search(node.value)
        ]
        with path.open("rb") as fh:
            offenders += [
                (name, token.start[0], token.string[:60])
                for token in tokenize.tokenize(fh.readline)
                if token.type == tokenize.COMMENT and pattern.search(token.string)
            ]
    assert offenders == []


def test_summary_json_is_read_and_written_only_by_the_summary_module():
    offenders = [
        name
        for name, path in _sources().items()
        if name != "runbook_lib.reporting.summary" and '"summary.json"' in path.read_text()
    ]
    assert offenders == []


def test_the_runbooks_never_send_a_request_to_learn_whether_the_target_is_a_sandbox():
    offenders = [
        name
        for name, path in _sources().items()
        if not name.startswith("runbook_lib.providers.")
        and re.search(r"_sandbox/faults[\"']\s*,|\+\s*[\"']/_sandbox", path.read_text())
    ]
    assert offenders == []


def test_every_import_also_inside_functions_names_a_module_that_exists():
    """A deferred import that points at a moved module fails only when its line runs: catch it."""
    import importlib.util

    def exists(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:  # its parent package is not there either
            return False

    missing = [
        (name, target)
        for name, path in _sources().items()
        for target in _imports(path, module_level_only=False)
        if not exists(target)
    ]
    assert missing == []
