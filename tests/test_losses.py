"""The loss modules (ratenets/losses/) hold pure functions of tensors, apart from the trainers that use them."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOSSES = sorted(p for p in (REPO / "ratenets" / "losses").glob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


@pytest.mark.parametrize("path", LOSSES, ids=lambda p: p.name)
def test_a_loss_module_imports_only_torch_and_the_standard_library(path):
    allowed_roots = {"torch", "__future__", "collections", "dataclasses", "math", "typing"}
    bad = [m for m in _imported_modules(path) if m.split(".")[0] not in allowed_roots]
    assert bad == [], f"{path.name} imports {bad}: a loss module must not depend on trainers, data or files"


@pytest.mark.parametrize("rule_module, loss_module, names", [
    ("ratenets.rules.lpl", "ratenets.losses.lpl",
     ("predictive_loss", "hebbian_loss", "decorrelation_loss", "lpl_terms", "lpl_terms_maps", "negsample_terms",
      "lpl_loss", "stale_update")),
    ("ratenets.rules.clapp", "ratenets.losses.clapp", ("Pairs", "pair_scores", "hinge_loss")),
    ("ratenets.rules.dpc", "ratenets.losses.dpc", ("dense_infonce", "block_scores", "gather_targets")),
])
def test_the_rule_modules_use_and_re_export_the_loss_functions(rule_module, loss_module, names):
    rule, loss = importlib.import_module(rule_module), importlib.import_module(loss_module)
    for n in names:
        assert getattr(rule, n) is getattr(loss, n), f"{rule_module}.{n} is not {loss_module}.{n}"
    # and the rule module no longer defines its own copy
    tree = ast.parse(Path(rule.__file__).read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    assert defined.isdisjoint(names)
