"""The profilers package imports no other cdrexp subpackage but its own modules, and its
modules form no circle (function-level imports included)."""
import ast
from pathlib import Path

import cdrexp.profilers

PKG = Path(cdrexp.profilers.__file__).parent


def _edges() -> dict[str, set[str]]:
    edges = {}
    for f in PKG.glob("*.py"):
        out = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                out.update([node.module.split(".")[0]] if node.module
                           else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and node.level > 1:
                out.add("..")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cdrexp"):
                out.add("..")
        edges[f.stem] = out
    return edges


def test_no_import_of_another_cdrexp_package():
    assert {m for m, out in _edges().items() if ".." in out} == set()


def test_no_circle_between_the_modules():
    edges = _edges()

    def reach(start):
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [m for m in edges if m in reach(m)] == []
