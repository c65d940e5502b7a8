"""Oracle tests: the supervised rules against the authors' own classes (opt-in).

Set ``RATESPIKE_CORINFOMAX_ORIG`` to the root of a checkout of BariscanBozkurt/Supervised-CorInfoMax at
commit e5fb839 (its ``src/`` is imported unchanged; nothing of it is copied into this project)::

    git clone https://github.com/BariscanBozkurt/Supervised-CorInfoMax "$ORIG" && git -C "$ORIG" checkout e5fb839
    RATESPIKE_CORINFOMAX_ORIG="$ORIG" python -m pytest -q -s tests/test_oracle_supervised.py

Each test gives both implementations the same initial weights (ours copied into theirs, in their
layout) and the same batches and nudge signs, runs several training steps in float64 exactly as the
authors' simulation scripts call their classes (learning-rate schedules included), and compares every
weight after every step. Without the variable the tests are skipped with the reason; a checkout of
another repository or commit fails with one line saying so.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ratenets.data import ImageDataset
from ratenets.rules import get_rule

ENV = "RATESPIKE_CORINFOMAX_ORIG"
COMMIT = "e5fb8397354cc306d7c0edce31dd79e3fe00f9d6"
N_IN, N_CLS, BATCH, STEPS = 12, 4, 6, 4
SIGNS = (1.0, -1.0, -1.0, 1.0)        # the nudge sign of each step (beta or lambda)
EPOCHS = (1, 1, 2, 17)                # the epoch each step belongs to: exercises every lr schedule


def _checkout() -> Path:
    root = os.environ.get(ENV)
    if not root:
        pytest.skip(f"{ENV} is not set (the root of a checkout of BariscanBozkurt/Supervised-CorInfoMax "
                    f"at {COMMIT[:7]})")
    path = Path(root)
    src = path / "src" / "ContrastiveModels.py"
    if not src.is_file() or "class ContrastiveCorInfoMaxHopfieldSparse" not in src.read_text(errors="replace"):
        pytest.fail(f"{ENV}={root} is not a checkout of BariscanBozkurt/Supervised-CorInfoMax "
                    f"(no src/ContrastiveModels.py with the CorInfoMax classes)", pytrace=False)
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.fail(f"{ENV}={root} is not a git checkout, so its commit cannot be checked "
                    f"(need {COMMIT[:7]})", pytrace=False)
    if head != COMMIT:
        pytest.fail(f"{ENV}={root} is at commit {head[:7]}, the oracle tests need {COMMIT[:7]}", pytrace=False)
    return path


@pytest.fixture(scope="module")
def orig():
    """The authors' modules ``ContrastiveModels``, ``ExplicitModels``, ``torch_utils``."""
    path = _checkout()
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.path.insert(0, str(path / "src"))
    try:
        mods = {m: importlib.import_module(m) for m in ("torch_utils", "ContrastiveModels", "ExplicitModels")}
    finally:
        sys.path.remove(str(path / "src"))
    return mods


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the authors' tensors are created with the default dtype
    yield
    torch.set_default_dtype(old)


def _data() -> ImageDataset:
    g = torch.Generator().manual_seed(5)
    n = BATCH * STEPS + 4
    x = torch.randint(0, 256, (n, 1, 1, N_IN), generator=g).to(torch.uint8)
    y = torch.randint(0, N_CLS, (n,), generator=g)
    return ImageDataset("synthetic", x, y, x[:4], y[:4], tuple(str(i) for i in range(N_CLS)))


def _ours(name: str, **changes):
    cls = get_rule(name)
    cfg = dataclasses.replace(cls.preset("synthetic"), **changes)
    rule = cls(cfg, _data(), seeds=(0,), device=torch.device("cpu"))
    rule.params = {k: v.double() for k, v in rule.params.items()}
    if hasattr(rule, "m"):
        rule.m = {k: v.double() for k, v in rule.m.items()}
        rule.v = {k: v.double() for k, v in rule.v.items()}
    rule.x_train = rule.x_train.double()
    state = {"t": 0}

    def signs():
        return torch.full((1, 1, 1), SIGNS[state["t"]], dtype=torch.float64)

    rule.random_signs = signs
    return rule, state


def _batches(rule):
    for t in range(STEPS):
        idx = torch.arange(t * BATCH, (t + 1) * BATCH)
        yield t, rule.x_train[idx].unsqueeze(0), rule.y_train[idx].unsqueeze(0)


def _report(name: str, gaps: list[float]) -> float:
    worst = max(gaps)
    print(f"\noracle {name}: max |ours - authors'| over {STEPS} steps = {worst:.3e} "
          f"(per step: {', '.join(f'{g:.1e}' for g in gaps)}; original at {COMMIT[:7]})")
    return worst


def _gap(pairs) -> float:
    return max(float((a - b).abs().max()) for a, b in pairs)


# --- CorInfoMax and CorInfoMax-Sparse ----------------------------------------------------------------------

def _cim_lr(c, epoch: int) -> dict[str, np.ndarray]:
    """The learning rates the authors' scripts pass at 0-based epoch ``e`` (staged decay, as coded)."""
    e = epoch - 1
    stage = max(i for i, s in enumerate(c.lr_decay_epochs) if s <= e)
    f = c.lr_decay_factors[stage] ** e
    return {"ff": np.array(c.lr_ff) * f, "fb": np.array(c.lr_fb) * f}


def _run_cim(orig, name: str, hidden: tuple[int, ...], **changes) -> float:
    rule, state = _ours(name, hidden=hidden, **changes)
    c, P = rule.config, rule.P
    arch = [N_IN, *hidden, N_CLS]
    cm = orig["ContrastiveModels"]
    if name == "corinfomax":
        theirs = cm.ContrastiveCorInfoMaxHopfield(arch, c.lam, c.eps, device=torch.device("cpu"))
    else:
        theirs = cm.ContrastiveCorInfoMaxHopfieldSparse(arch, c.lam, c.eps, sparse_layers=list(c.sparse_layers),
                                                        device=torch.device("cpu"))
    p = rule.params
    for k in range(P):  # ours batch-first (r @ W): theirs = ours^T
        theirs.Wff[k]["weight"] = p[f"Wf{k}"][0].T.clone()
        theirs.B[k]["weight"] = p[f"B{k}"][0].clone()
        if k >= 1:
            theirs.Wfb[k]["weight"] = p[f"Wb{k}"][0].T.clone()
    gaps, beta = [], c.beta
    for t, x, y in _batches(rule):
        state["t"] = t
        beta = SIGNS[t] * c.beta
        y1 = torch.nn.functional.one_hot(y[0], N_CLS).double().T
        common = dict(hopfield_g=c.g, lr=_cim_lr(c, EPOCHS[t]), neural_lr_start=c.neural_lr,
                      neural_lr_stop=c.neural_lr_stop, neural_lr_rule=c.neural_lr_rule,
                      neural_lr_decay_multiplier=c.neural_lr_decay, neural_dynamic_iterations_free=c.t_free,
                      neural_dynamic_iterations_nudged=c.t_nudged, beta=beta, use_three_phase=False,
                      take_debug_logs=False)
        if name != "corinfomax":
            common["STlambda_lr_list"] = list(c.lagrange_lr)
        theirs.batch_step_hopfield(x[0].T.clone(), y1, **common)
        rule.step(x, y, epoch=EPOCHS[t])
        pairs = [(p[f"Wf{k}"][0].T, theirs.Wff[k]["weight"]) for k in range(P)]
        pairs += [(p[f"B{k}"][0], theirs.B[k]["weight"]) for k in range(P)]
        pairs += [(p[f"Wb{k}"][0].T, theirs.Wfb[k]["weight"]) for k in range(1, P)]
        gaps.append(_gap(pairs))
    return _report(name, gaps)


def test_corinfomax_matches_the_authors_class(orig):
    # a 3-layer net, so that the feedback weights and both layer kinds are exercised
    assert _run_cim(orig, "corinfomax", (7, 5), lr_ff=(1.1, 0.75, 0.6), lr_fb=(0.0, 0.17, 0.07)) < 1e-12


def test_corinfomax_slow_decay_rule_matches(orig):
    assert _run_cim(orig, "corinfomax", (7,), neural_lr_rule="divide_by_slow_loop_index", g=0.3,
                    neural_lr=0.07) < 1e-12


def test_corinfomax_sparse_matches_the_authors_class(orig):
    # the V1 settings behind the paper's table (T 20/4); lagrange_lr raised so that the multipliers move
    assert _run_cim(orig, "corinfomax-sparse", (7,), lagrange_lr=(0.05, 0.2)) < 1e-12


# --- EP and CSM ----------------------------------------------------------------------------------------------

def _run_ep(orig, name: str, **changes) -> float:
    rule, state = _ours(name, hidden=(7,), lr_step_epochs=15, lr_step_gamma=0.75, **changes)
    c, P, p = rule.config, rule.P, rule.params
    cm, tu = orig["ContrastiveModels"], orig["torch_utils"]
    arch = [N_IN, 7, N_CLS]
    if name == "ep":
        theirs = cm.EP(arch, activation=tu.hard_sigmoid)
        opt = torch.optim.SGD([{"params": theirs.W[k].parameters(), "lr": c.lr[k]} for k in range(P)], momentum=0.0)
    else:
        theirs = cm.CSM(arch, activation=tu.hard_sigmoid, alphas_W=list(c.lr), alphas_M=list(c.lr_lateral))
        opt = theirs.optimizer
    with torch.no_grad():
        for k in range(P):
            theirs.W[k].weight.copy_(p[f"W{k}"][0].T)
            theirs.W[k].bias.copy_(p[f"b{k}"][0, 0])
        if name == "csm":
            theirs.M[0].weight.copy_(p["M0"][0])  # M_copy shares this storage
    base = [g["lr"] for g in opt.param_groups]
    criterion = torch.nn.MSELoss(reduction="none")
    gaps = []
    for t, x, y in _batches(rule):
        state["t"] = t
        factor = c.lr_step_gamma ** ((EPOCHS[t] - 1) // c.lr_step_epochs)  # what their StepLR(15, 0.75) gives
        for g, lr0 in zip(opt.param_groups, base):
            g["lr"] = lr0 * factor
        xb, yb = x[0].clone(), y[0].clone()
        betas = (0.0, SIGNS[t] * c.beta)
        neurons = theirs.init_neurons(BATCH, torch.device("cpu"))
        neurons = theirs(xb, yb, neurons, c.t_free, beta=0.0, criterion=criterion)
        n1 = tu.copy(neurons)
        neurons = theirs(xb, yb, neurons, c.t_nudged, beta=betas[1], criterion=criterion)
        n2 = tu.copy(neurons)
        if name == "ep":
            theirs.compute_syn_grads(xb, yb, n1, n2, betas, criterion)
            opt.step()
        else:
            theirs.compute_syn_grads(xb, yb, n1, n2, betas, list(c.lr_lateral), criterion)
        rule.step(x, y, epoch=EPOCHS[t])
        pairs = [(p[f"W{k}"][0].T, theirs.W[k].weight.detach()) for k in range(P)]
        pairs += [(p[f"b{k}"][0, 0], theirs.W[k].bias.detach()) for k in range(P)]
        if name == "csm":
            pairs.append((p["M0"][0], theirs.M[0].weight.detach()))
        gaps.append(_gap(pairs))
    return _report(name + "".join(f" ({k}={v})" for k, v in changes.items()), gaps)


# Their energy evaluates the nudge term as criterion(layers[-1].float(), y.float()): float32, so the nudged
# phase carries float32 rounding (~1e-8 relative) and the two agree to that, not to float64.
def test_ep_matches_the_authors_class(orig):
    assert _run_ep(orig, "ep") < 1e-7


def test_csm_matches_the_authors_class(orig):
    assert _run_ep(orig, "csm") < 1e-7


def test_csm_contrastive_lateral_form_is_not_the_authors(orig):
    """The free-vs-nudged lateral update (our pre-issue-15 form) departs from their class."""
    assert _run_ep(orig, "csm", lateral_rule="contrastive") > 1e-4


# --- PC and PC-Nudge ---------------------------------------------------------------------------------------

def _copy_pc_weights(rule, theirs) -> None:
    """Ours ``(seed, fan_in, fan_out)`` into their ``(out, in)`` weights and ``(out, 1)`` biases."""
    with torch.no_grad():
        for k in range(rule.P):
            for key, ours in (("weight", rule.params[f"W{k}"][0].T), ("bias", rule.params[f"b{k}"][0].T)):
                if theirs.Wff[k][key].requires_grad:  # PC-Nudge: leaves its optimiser holds, copy in place
                    theirs.Wff[k][key].copy_(ours)
                else:
                    theirs.Wff[k][key] = ours.clone()


def _pc_pairs(rule, theirs):
    pairs = [(rule.params[f"W{k}"][0].T, theirs.Wff[k]["weight"].detach()) for k in range(rule.P)]
    return pairs + [(rule.params[f"b{k}"][0].T, theirs.Wff[k]["bias"].detach()) for k in range(rule.P)]


def test_pc_matches_the_authors_class(orig):
    rule, state = _ours("pc", hidden=(7, 5))
    c = rule.config
    theirs = orig["ExplicitModels"].SupervisedPredictiveCoding([N_IN, 7, 5, N_CLS], "sigmoid")
    theirs.device = torch.device("cpu")
    _copy_pc_weights(rule, theirs)
    gaps = []
    for t, x, y in _batches(rule):
        state["t"] = t
        xb = orig["torch_utils"].activation_inverse(x[0].T.clone(), "sigmoid")  # logit(pixel), as the scripts
        y1 = torch.nn.functional.one_hot(y[0], N_CLS).double().T
        y1 = (c.target_on - c.target_off) * y1 + c.target_off
        lr = {"ff": c.lr * c.lr_decay ** (EPOCHS[t] - 1)}
        theirs.batch_step(xb, y1, lr, c.neural_lr, 0.05, "constant", 0.01, c.t_inference, optimizer="adam",
                          adam_opt_params={"beta1": c.adam_betas[0], "beta2": c.adam_betas[1], "eps": c.adam_eps})
        rule.step(x, y, epoch=EPOCHS[t])
        gaps.append(_gap(_pc_pairs(rule, theirs)))
    # Adam divides by sqrt(v) + 1e-8: where a gradient is ~1e-8, float64 rounding of the gradient (~1e-17)
    # becomes ~1e-9 of that element's step, so the two agree to ~1e-10, not to 1e-15
    assert _report("pc", gaps) < 1e-9


@pytest.mark.parametrize("random_sign", [True, False])
def test_pc_nudge_matches_the_authors_class(orig, random_sign):
    rule, state = _ours("pc-nudge", hidden=(7, 5), lr_step_batches=2, lr_step_gamma=0.5, random_sign=random_sign)
    c = rule.config
    theirs = orig["ExplicitModels"].SupervisedPredictiveCodingNudgedV2_wAutoGrad(
        [N_IN, 7, 5, N_CLS], torch.nn.functional.relu, optimizer_type="sgd", optim_lr=c.lr, use_stepLR=True,
        stepLR_step_size=c.lr_step_batches, stepLR_gamma=c.lr_step_gamma)
    _copy_pc_weights(rule, theirs)
    gaps = []
    for t, x, y in _batches(rule):
        state["t"] = t
        lam = (SIGNS[t] if random_sign else 1.0) * c.lam_nudge
        y1 = torch.nn.functional.one_hot(y[0], N_CLS).double().T
        theirs.batch_step(x[0].T.clone(), y1, lam, c.neural_lr, 0.05, "constant", 0.005, c.t_inference)
        rule.step(x, y, epoch=EPOCHS[t])
        gaps.append(_gap(_pc_pairs(rule, theirs)))
    assert _report(f"pc-nudge (random_sign={random_sign})", gaps) < 1e-12
