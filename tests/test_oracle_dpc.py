"""Oracle test of DPC against the authors' own code (opt-in): colleenjg/DPC, commit dbd4fef.

``RATESPIKE_DPC_ORIG`` names a local checkout of ``colleenjg/DPC``. The test imports its ``model/model_3d.py``
(``DPC_RNN`` with the 2D3D ResNet-18 and the ConvGRU), ``utils/training_utils.py`` (``prep_loss``,
``init_optimizer``), ``utils/loss_utils.py`` (``get_criteria``) and ``analysis/hooks.py`` (``init_hook_dict``),
copies the original's weights into :class:`ratenets.rules.dpc.DPCNet` and feeds both the same batches in
float64:

* training: the loss, every parameter gradient and every parameter after each of 3 Adam steps (train mode;
  ConvGRU dropout set to 0 in both, since their random masks cannot be shared);
* analysis: the activations and errors that the original's hooks record at its three sites (``avg_pool``,
  ``agg.cell_list[0].out_gate``, ``network_pred[2]``) against :func:`ratenets.analysis.dpc_hooks.hook_pass`
  with ``contextual="original"``, in eval mode as ``collect_save_hook_data`` runs them, for P = 1 (the Gabor
  protocol) and P = 2 (where the original's call counting and firing order show).

No shim is needed at that commit (its imports are torch, torchvision, numpy, pandas, matplotlib, joblib, tqdm,
yaml). Absent variable: skipped with the reason. A checkout of another repository, or at another commit, fails
with one line (``RATESPIKE_ORACLE_ANY_COMMIT=1`` runs it anyway). Nothing of the original is copied here.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
from test_oracle_ssl import _checkout as _checkout_at  # tests/ is on sys.path (conftest)
import torch

from ratenets.analysis.dpc_hooks import HOOK_SITES, HOOK_TYPES, hook_pass
from ratenets.rules.dpc import DPCConfig, DPCNet, dense_infonce

DPC_COMMIT = "dbd4fef14e3edd972c96b2cad3db8063a868b7b4"
REPO = "colleenjg/DPC"
MARKERS = ("model/model_3d.py", "model/convrnn.py", "analysis/hooks.py", "utils/training_utils.py")
PX, BATCH, SEQ_LEN, N_IN = 64, 4, 5, 3


def _checkout() -> Path:
    root = _checkout_at("RATESPIKE_DPC_ORIG", MARKERS[0], DPC_COMMIT, REPO)
    missing = [m for m in MARKERS[1:] if not (root / m).is_file()]
    if missing:
        pytest.fail(f"RATESPIKE_DPC_ORIG={root} is not a checkout of {REPO}: {missing[0]} is missing", pytrace=False)
    return root


@pytest.fixture
def orig(monkeypatch):
    root = _checkout()
    top = ("model", "utils", "analysis", "dataset")
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(root))        # restored afterwards, with the original's own sys.path edits
    mods = {name: importlib.import_module(name) for name in
            ("model.model_3d", "utils.training_utils", "utils.loss_utils", "analysis.hooks")}
    yield mods
    for name in set(sys.modules) - before:        # their top-level packages would shadow nothing, but do not linger
        if name.split(".")[0] in top:
            del sys.modules[name]


def _pair(orig, pred_step: int) -> tuple[torch.nn.Module, DPCNet]:
    """The original's DPC_RNN and our DPCNet holding the same weights, in float64."""
    torch.manual_seed(0)
    theirs = orig["model.model_3d"].DPC_RNN(PX, num_seq_in=N_IN, seq_len=SEQ_LEN, pred_step=pred_step,
                                           network="resnet18").double()
    cfg = DPCConfig(encoder="resnet18_2d3d", feature_dim=256, img_px=PX, canvas_px=PX, seq_len=SEQ_LEN,
                    num_seq=N_IN + pred_step, pred_step=pred_step, batch_size=BATCH)
    ours = DPCNet(cfg, in_channels=3).double()
    mapping = _param_map(theirs, ours)
    with torch.no_grad():
        for mine, (src, rows) in mapping.items():
            dict(ours.named_parameters())[mine].copy_(torch.cat([dict(theirs.named_parameters())[s] for s in src])
                                                      if rows else dict(theirs.named_parameters())[src[0]])
    return theirs, ours


def _param_map(theirs, ours) -> dict[str, tuple[list[str], bool]]:
    """Our parameter name -> (their parameter names, stacked by rows); every parameter of both is covered."""
    out: dict[str, tuple[list[str], bool]] = {}
    for name, _ in theirs.named_parameters():
        parts = name.split(".")
        if parts[0] == "backbone":
            if parts[1] in ("conv1", "bn1"):
                mine = f"encoder.stem.{0 if parts[1] == 'conv1' else 1}.{parts[2]}"
            else:                                        # layerK.J.(conv1|bn1|conv2|bn2|downsample.I).param
                k, j = int(parts[1][5:]) - 1, parts[2]
                rest = parts[3:]
                if rest[0] == "downsample":
                    rest = ["down", *rest[1:]]
                mine = ".".join(["encoder.layers", str(k), j, *rest])
            out[mine] = ([name], False)
        elif parts[0] == "agg":                          # agg.ConvGRUCell_00.<gate>.<param> (cell_list shares it)
            gate, p = parts[-2], parts[-1]
            if gate == "out_gate":
                out[f"aggregator.cand.{p}"] = ([name], False)
            else:                                        # our gates conv: reset rows first, then update
                prefix = ".".join(parts[:-2])
                out[f"aggregator.gates.{p}"] = ([f"{prefix}.reset_gate.{p}", f"{prefix}.update_gate.{p}"], True)
        elif parts[0] == "network_pred":
            out[f"predictor.{parts[1]}.{parts[2]}"] = ([name], False)
        else:
            raise AssertionError(f"unmapped parameter of the original: {name}")
    assert set(out) == {n for n, _ in ours.named_parameters()}, "every parameter of ours has a source"
    return out


def _their_loss(orig, theirs, x):
    tu, lu = orig["utils.training_utils"], orig["utils.loss_utils"]
    score, mask = theirs(x)
    out_f, tgt_f, _, _ = tu.prep_loss(score, mask, input_seq_shape=x.size(), supervised=False, is_gabor=True)
    criterion, _ = lu.get_criteria()
    return criterion(out_f, tgt_f)


def _batches(n: int, pred_step: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return [torch.randn(BATCH, N_IN + pred_step, 3, SEQ_LEN, PX, PX, generator=g, dtype=torch.float64)
            for _ in range(n)]


def test_training_steps_match_the_original(orig):
    theirs, ours = _pair(orig, pred_step=1)
    theirs.agg.dropout_layer.p = 0.0
    ours.aggregator.drop.p = 0.0
    theirs.train()
    ours.train()
    mapping = _param_map(theirs, ours)
    opt_t, _ = orig["utils.training_utils"].init_optimizer(theirs, lr=1e-3, wd=1e-5)
    cfg = DPCConfig()
    opt_o = torch.optim.Adam(ours.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)   # as DPC.__init__
    tp, op = dict(theirs.named_parameters()), dict(ours.named_parameters())

    def theirs_as_ours(name: str, grad: bool) -> torch.Tensor:
        src, rows = mapping[name]
        ts = [tp[s].grad if grad else tp[s] for s in src]
        return torch.cat(ts) if rows else ts[0]

    for step, x in enumerate(_batches(3, 1)):
        opt_t.zero_grad()
        loss_t = _their_loss(orig, theirs, x)
        loss_t.backward()
        opt_o.zero_grad()
        pred, target = ours(x, 1)
        loss_o = dense_infonce(pred, target)[0].mean()
        loss_o.backward()
        assert abs(float(loss_o.detach()) - float(loss_t.detach())) <= 1e-12 * abs(float(loss_t.detach())), \
            f"loss at step {step}: {float(loss_o.detach())} vs {float(loss_t.detach())}"
        for name in op:                 # float64 summation-order noise only: |diff| <= 1e-9 of the largest entry
            ref = theirs_as_ours(name, True)
            err = float((op[name].grad - ref).abs().max())
            assert err <= 1e-9 * float(ref.abs().max()) + 1e-300, f"step {step} grad {name}: max |diff| {err:.2e}"
        opt_t.step()
        opt_o.step()
        for name in op:
            err = float((op[name].detach() - theirs_as_ours(name, False).detach()).abs().max())
            assert err <= 1e-9, f"step {step} param {name}: max |diff| {err:.2e}"


@pytest.mark.parametrize("pred_step", [1, 2])
def test_hook_sites_match_the_originals_hooks(orig, pred_step):
    theirs, ours = _pair(orig, pred_step)
    theirs.eval()                                         # as collect_save_hook_data (no learning)
    hooks = orig["analysis.hooks"]
    hook_dict, act_h, err_h = hooks.init_hook_dict(theirs, batch_size=BATCH)
    batches = _batches(2, pred_step)
    try:
        for x in batches:
            loss = _their_loss(orig, theirs, x)
            theirs.zero_grad()
            loss.backward()
            theirs.zero_grad()
    finally:
        for h in act_h + err_h:
            h.remove()
    assert tuple(hooks.HOOK_MODULES) == HOOK_SITES and tuple(hooks.HOOK_TYPES) == HOOK_TYPES
    ours.train()                                          # hook_pass itself switches to eval mode
    got = hook_pass(ours, batches, pred_step, lambda p, t: dense_infonce(p, t)[0].mean(), contextual="original")
    for site in HOOK_SITES:
        for kind in HOOK_TYPES:
            ref = torch.cat(hook_dict[site][kind]).reshape(len(batches) * BATCH, -1).numpy()
            assert got[(site, kind)].shape == ref.shape, (site, kind)
            scale = np.abs(ref).max()
            assert scale > 0, (site, kind)
            np.testing.assert_allclose(got[(site, kind)], ref, rtol=1e-9, atol=1e-12 * scale,
                                       err_msg=f"{site} {kind}, P = {pred_step}")
