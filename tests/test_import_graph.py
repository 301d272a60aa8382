"""The project's packages import each other without cycles, counting every import statement,
also those inside functions and under `if TYPE_CHECKING:` (read with ast, nothing imported)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("study", "models", "analysis", "experiments", "benchmarks")


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages (a package is its
    __init__.py)."""
    out = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def imported(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(module of the project, line) for each import in the file. `from a.b import c` is an
    import of the module a.b.c when there is one, else of a.b (c is a name defined there)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules:
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    yield f"{source}.{alias.name}", node.lineno
                elif source in modules:
                    yield source, node.lineno


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """module -> {imported module: line of the first such import}."""
    modules = module_files(root, packages)
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges: dict[str, int] = {}
        for target, line in imported(name, path, modules):
            if target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            child = next(edges, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def _describe(group: list[str], graph: dict[str, dict[str, int]], modules: dict[str, Path]) -> str:
    lines = [" <-> ".join(group)]
    for name in group:
        for target, line in sorted(graph[name].items()):
            if target in group:
                lines.append(f"  {modules[name].relative_to(ROOT)}:{line} imports {target}")
    return "\n".join(lines)


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT, PACKAGES)
    modules = module_files(ROOT, PACKAGES)
    assert len(graph) > 100  # the walk found the project
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(g, graph, modules) for g in found)


def test_the_walk_finds_cycles_through_function_level_and_package_imports(tmp_path: Path) -> None:
    files = {
        "pkg/__init__.py": "from pkg import views  # routes register on import\n",
        "pkg/views.py": "from pkg import bp\n",  # the package's own name: a cycle with __init__
        "pkg/cli.py": "def main():\n    from pkg.backup import run\n",
        "pkg/backup.py": "def run():\n    from .cli import InputError\n",  # relative, in a function
        "pkg/plain.py": "import os\nfrom pkg import cli\n",  # imports into a cycle, is in none
        "other/__init__.py": "",
        "other/one.py": "if False:\n    import other.two\n",
        "other/two.py": "from other.one import thing\n",
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    graph = import_graph(tmp_path, ("pkg", "other"))
    assert sorted(cycles(graph)) == [["other.one", "other.two"], ["pkg", "pkg.views"],
                                     ["pkg.backup", "pkg.cli"]]


def test_the_checkpoint_registry_imports_none_of_its_plug_ins() -> None:
    """Checkpoint kinds register themselves (models.diffusion.store, models.classifiers.store);
    models.checkpoint, the registry, reaches no network package, not even inside a function."""
    graph = import_graph(ROOT, PACKAGES)
    reached, todo = set(), ["models.checkpoint"]
    while todo:
        for target in graph[todo.pop()]:
            if target not in reached:
                reached.add(target)
                todo.append(target)
    plug_ins = sorted(m for m in reached if m.startswith(("models.diffusion", "models.classifiers")))
    assert "models.device" in reached  # the walk follows function-level imports
    assert not plug_ins, f"models.checkpoint reaches {plug_ins}"
