"""cdrexp.ab talks to the other subpackages through their public names only: no
``_private`` module of another subpackage is imported (issue 23), and the command
line's modules do not import each other in a circle."""
import ast
from pathlib import Path

import cdrexp.ab

AB = Path(cdrexp.ab.__file__).parent


def _imports(path: Path) -> list[str]:
    """Every module imported by ``path``, as a dotted name relative to cdrexp."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                out.append(node.module or "")
            else:
                base = "ab" if node.level == 1 else ""
                out.append(".".join(p for p in (base, node.module or "") if p))
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return [m.removeprefix("cdrexp.") for m in out]


def test_ab_imports_no_private_module_of_another_subpackage():
    bad = []
    for path in sorted(AB.glob("*.py")):
        for module in _imports(path):
            parts = module.split(".")
            if parts[0] in ("ab", "") or len(parts) < 2:
                continue        # its own modules; a top-level one (cdrexp._git)
            if any(p.startswith("_") for p in parts[1:]):
                bad.append(f"{path.name}: {module}")
    assert bad == []


def test_the_command_lines_do_not_import_each_other_in_a_circle():
    cli = _imports(AB / "cli.py")
    bisect_cli = _imports(AB / "_bisect_cli.py")
    assert "ab._bisect_cli" in cli              # --bisect is dispatched from cli
    assert "ab.cli" not in bisect_cli
