"""Architecture checks `make lint` runs beside import-linter's layer contracts (pyproject.toml).

import-linter treats the `azure` namespace as one external package, so which layer may import which Azure
SDK is checked here, together with what no contract type covers:

- SDK imports: `azure.storage` and `azure.cosmos` only in `shared.storage`; Agent Framework and `openai`
  only in `shared.agents`; HTTP types (`azure.functions`, the FastAPI extension, FastAPI, Starlette,
  pydantic) only in `shared.http`. Every import counts, inside functions too; `TYPE_CHECKING` blocks do not.
- No import cycle among the package's modules, imports inside functions included (grimp's graph).
- No module over 500 lines and no function over 60 lines.

    python -m tools.architecture [package_dir]     # exit status 1 and one line per finding
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grimp

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
# (imported module prefix, the one layer allowed to import it)
SDK_OWNERS: tuple[tuple[str, str], ...] = (
    ("azure.storage", "storage"),
    ("azure.cosmos", "storage"),
    ("agent_framework", "agents"),
    ("openai", "agents"),
    ("azure.functions", "http"),
    ("azurefunctions", "http"),
    ("fastapi", "http"),
    ("starlette", "http"),
    ("pydantic", "http"),
)


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. shared.storage.turns
    path: Path

    @property
    def layer(self) -> str:
        parts = self.name.split(".")
        return parts[1] if len(parts) > 1 else ""


def modules(package_dir: Path) -> list[Module]:
    root = package_dir.parent
    found = []
    for path in sorted(package_dir.rglob("*.py")):
        dotted = ".".join(path.relative_to(root).with_suffix("").parts)
        found.append(Module(dotted.removesuffix(".__init__"), path))
    return found


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imported_names(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """Every module an import statement names (inside functions too, TYPE_CHECKING blocks excepted)."""
    skipped = _type_checking_lines(tree)
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from ((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module, node.lineno


def sdk_findings(module: Module, tree: ast.Module) -> Iterator[str]:
    for imported, line in imported_names(tree):
        for prefix, owner in SDK_OWNERS:
            if (imported == prefix or imported.startswith(prefix + ".")) and module.layer != owner:
                yield f"{module.path}:{line}: {imported} may only be imported in shared.{owner}"


def size_findings(module: Module, source: str, tree: ast.Module) -> Iterator[str]:
    lines = source.count("\n")
    if lines > MAX_MODULE_LINES:
        yield f"{module.path}: {lines} lines (at most {MAX_MODULE_LINES})"
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{module.path}:{node.lineno}: {node.name} has {length} lines (at most {MAX_FUNCTION_LINES})"


def cycle_findings(package: str) -> Iterator[str]:
    """One line per strongly connected group of modules (a cycle), imports inside functions included."""
    graph = grimp.build_graph(package, exclude_type_checking_imports=True, cache_dir=None)
    edges = {module: set(graph.find_modules_directly_imported_by(module)) for module in graph.modules}
    for group in _strongly_connected(edges):
        if len(group) > 1:
            yield f"import cycle: {' -> '.join(sorted(group))}"


def _strongly_connected(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iteratively (a package's graph can be deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def check(package_dir: Path) -> list[str]:
    findings: list[str] = []
    for module in modules(package_dir):
        source = module.path.read_text(encoding="utf-8")
        tree = ast.parse(source, str(module.path))
        findings += sdk_findings(module, tree)
        findings += size_findings(module, source, tree)
    sys.path.insert(0, str(package_dir.parent))
    findings += cycle_findings(package_dir.name)
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    package_dir = Path(args[0] if args else Path(__file__).resolve().parent.parent / "shared")
    findings = check(package_dir)
    for finding in findings:
        print(finding)
    print(f"architecture: {len(findings)} findings in {package_dir}", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
