"""The layering, read from the source: ratenets and spiking never import each other; bridge outside
bridge/commands imports neither (it is the data model every package may use, and the home of the Fig. 5
paradigm, bridge.fig5); only bridge/commands may import both, and the kernel never imports the CLI.
Imports inside functions count too."""
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


#: which top-level package may import which (tests, analyses and benchmarks sit on top and may import all)
ALLOWED = {
    "bridge": {"bridge"},                      # the kernel: data model, measures, the Fig. 5 paradigm
    "ratenets": {"ratenets", "bridge"},
    "spiking": {"spiking", "bridge"},
}


def test_each_package_imports_only_what_the_layering_allows():
    project = {"bridge", "ratenets", "spiking", "analyses", "benchmarks", "tests"}
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in sorted((REPO / pkg).rglob("*.py")):
            if pkg == "bridge" and "commands" in path.relative_to(REPO).parts:
                allowed_here = {"bridge", "ratenets", "spiking"}  # the CLI: parse, call, write
            else:
                allowed_here = allowed
            hit = (_imports(path) & project) - allowed_here
            if hit:
                bad.append(f"{path.relative_to(REPO)} imports {', '.join(sorted(hit))}")
    assert bad == []


def test_the_kernel_never_imports_the_cli():
    bad = []
    for path in sorted((REPO / "bridge").rglob("*.py")):
        if "commands" in path.relative_to(REPO).parts or path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "bridge.commands" or m.startswith("bridge.commands.") or m == "bridge.cli" for m in mods):
                bad.append(str(path.relative_to(REPO)))
    assert bad == []


def test_no_analysis_module_in_the_cli_folder():
    """bridge/commands parses, calls and writes: the Fig. 5 definitions and the comparisons live in bridge."""
    for path in (REPO / "bridge" / "commands").glob("*.py"):
        src = path.read_text()
        for name in ("linear_decoding", "lasso_predict", "selectivity_index", "participation_ratio(",
                     "np.add.at(", "linear_cka("):
            assert name not in src, f"{path.relative_to(REPO)} computes ({name}); move it into bridge/"
