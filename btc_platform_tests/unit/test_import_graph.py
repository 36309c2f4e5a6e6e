"""No import cycle between btc_platform's modules, read statically from the source (under a second).

Only module-level imports count (an import inside a function runs later, once every module is loaded).
An edge from a module to its own ancestor package is left out: a package's `__init__` importing its
submodules, which import names from the package, is how Python packages work. Any other cycle means a
module's import order decides whether the code loads at all. This replaces starting a fresh interpreter
per `defs` area, which took 215 s.
"""

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "btc_platform"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports when it is loaded (module level, including inside if/try)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for statement in ast.parse(path.read_text(), filename=str(path)).body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)  # a submodule by name
    edges = set()
    for target in found:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c loads a.b too
            module = ".".join(parts[:i])
            if module in known and module != name and not name.startswith(module + "."):
                edges.add(module)
    return edges


def import_graph() -> nx.DiGraph:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in module_imports(name, path, set(modules)))
    return graph


def test_no_module_level_import_cycle():
    cycles = [sorted(c) for c in nx.strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, f"import cycles: {cycles}"


def test_the_check_sees_a_cycle(tmp_path, monkeypatch):
    """Two sibling modules importing each other at module level are reported."""
    pkg = tmp_path / "btc_platform"
    (pkg / "area").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "area" / "__init__.py").write_text("from btc_platform.area import a\n")
    (pkg / "area" / "a.py").write_text("from btc_platform.area.b import helper\n")
    (pkg / "area" / "b.py").write_text("def helper():\n    from btc_platform.area import a  # later: fine\n"
                                       "from btc_platform.area.a import thing\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match=r"btc_platform\.area\.a', 'btc_platform\.area\.b"):
        test_no_module_level_import_cycle()
