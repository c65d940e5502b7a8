"""The layering, read from the source: ratenets and spiking never import each other; bridge outside
bridge/commands imports neither (it is the data model every package may use); only bridge/commands may
import both. Imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def _violations(folder: str, forbidden: set[str], skip: str | None = None) -> list[str]:
    bad = []
    for path in sorted((REPO / folder).rglob("*.py")):
        if skip and skip in path.relative_to(REPO).parts:
            continue
        hit = _imports(path) & forbidden
        if hit:
            bad.append(f"{path.relative_to(REPO)} imports {', '.join(sorted(hit))}")
    return bad


def test_ratenets_never_imports_spiking():
    assert _violations("ratenets", {"spiking"}) == []


def test_spiking_never_imports_ratenets():
    assert _violations("spiking", {"ratenets"}) == []


def test_bridge_outside_commands_imports_neither():
    assert _violations("bridge", {"ratenets", "spiking"}, skip="commands") == []


def test_the_check_sees_imports_inside_functions(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from spiking.devices import check_device\n    import ratenets.train\n")
    assert _imports(p) >= {"spiking", "ratenets"}
