"""Spiking encoders (snntorch) trained by the layer-local rules: neuron equations, explicit rule, locality, files.

* snntorch's ``Leaky`` and ``Synaptic`` follow the discrete LIF recurrences written in the module docstring
  of :mod:`ratenets.encoders.spiking` (a NumPy reference, step by step);
* at ``T = 1`` the gradient of a spiking CLAPP layer equals the explicit three-factor rule (Illing et al.
  2021, Eqs. 6-8) with the surrogate derivative as post factor;
* layer-local training keeps gradients from crossing layers (end-to-end BPTT does not);
* the same seed gives the same results file; bad neuron settings are one line and exit 2; a silent layer
  stops the run naming layer and epoch and keeps the finished epochs.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from bridge.cli import main
from bridge.config import replace_config
from bridge.errors import DivergenceError
from ratenets.data import make_synthetic
from ratenets.encoders.patches import ConvBlock, extract_patches, pooled
from ratenets.encoders.spiking import (SilentLayerError, SpikingBlock, SpikingFields, encode, make_neuron,
                                       readout, spike_max_pool, spiking_block)
from ratenets.rules.clapp import PatchCPCConfig, hinge_loss, sample_pairs, three_factor_grads
from ratenets.rules.clapp import CLAPP
from ratenets.rules.lpl import LPL, LPLConfig
from ratenets.train import RunContext, fit


def _lif(**kw) -> SpikingFields:
    return SpikingFields(**{"neuron": "lif", **kw})


# ----------------------------------------------------------------------------------------------------------------
# 1. the neuron equations

def _reference_lif(cur: np.ndarray, beta: float, thr: float, reset: str, alpha: float | None = None):
    """NumPy loops of the documented recurrences; state from rest, reset from the previous step's spike."""
    u = np.zeros(cur.shape[1:])
    i_syn = np.zeros(cur.shape[1:])
    s_prev = np.zeros(cur.shape[1:])
    spikes, mems = [], []
    for t in range(cur.shape[0]):
        drive = cur[t]
        if alpha is not None:
            i_syn = alpha * i_syn + cur[t]
            drive = i_syn
        if reset == "zero" and alpha is not None:
            u = (1 - s_prev) * (beta * u + drive)  # Synaptic: the whole new value is zeroed, I_syn is kept
        elif reset == "subtract":
            u = beta * u + drive - s_prev * thr
        elif reset == "zero":
            u = beta * (1 - s_prev) * u + drive
        else:
            u = beta * u + drive
        s = (u - thr > 0).astype(float)
        spikes.append(s)
        mems.append(u.copy())
        s_prev = s
    return np.array(spikes), np.array(mems)


@pytest.mark.parametrize("neuron", ["lif", "synaptic"])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_snntorch_neurons_follow_the_documented_lif_equations(neuron, reset):
    torch.manual_seed(0)
    cfg = SpikingFields(neuron=neuron, beta=0.75, alpha=0.625, threshold=0.6875, reset_mechanism=reset)  # exact in float32
    scale = 0.9 if neuron == "lif" else 0.3  # the synaptic current integrates the input twice
    cur = torch.rand(30, 4, 5, dtype=torch.float64) * scale  # (T, B, units): spikes and silences
    lif = make_neuron(cfg).double()
    mem = torch.zeros(4, 5, dtype=torch.float64)
    syn = torch.zeros(4, 5, dtype=torch.float64)
    spikes, mems = [], []
    for t in range(cur.shape[0]):
        if neuron == "lif":
            spk, mem = lif(cur[t], mem)
        else:
            spk, syn, mem = lif(cur[t], syn, mem)
        spikes.append(spk.double())
        mems.append(mem)
    s_ref, u_ref = _reference_lif(cur.numpy(), 0.75, 0.6875, reset, 0.625 if neuron == "synaptic" else None)
    assert s_ref.sum() > 20 and (s_ref == 0).sum() > 20, "the case must have spikes and silences"
    np.testing.assert_allclose(torch.stack(mems).numpy(), u_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(torch.stack(spikes).numpy(), s_ref)
    # the block's own time loop (fresh state for every sequence) gives the same spikes
    block = SpikingBlock(torch.nn.Identity(), False, cfg).double()
    np.testing.assert_array_equal(block.run(cur).numpy(), s_ref)
    np.testing.assert_array_equal(block.run(cur).numpy(), s_ref)  # no state carried over between calls


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_spike_max_pool_has_max_pool2d_gradient_and_keeps_one_byte_per_input(dtype):
    """The pool of the spiking blocks: forward and backward bitwise those of ``max_pool2d`` on 0/1 spike maps
    (ties everywhere, all-zero windows included), with a sixth of the bytes saved for backward."""
    g = torch.Generator().manual_seed(0)
    s = (torch.rand(4, 3, 8, 8, generator=g) < 0.3).to(dtype)
    s[0, 0, :2, :2] = 0  # an all-zero window: max_pool2d sends the gradient to its first element
    s[0, 1, :2, :2] = 1  # an all-one window
    grad = torch.randn(4, 3, 4, 4, generator=g, dtype=dtype)
    saved = {}

    def run(fn, key):
        x = s.clone().requires_grad_(True)

        def pack(t):
            saved[key] = saved.get(key, 0) + t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            y = fn(x)
        (gx,) = torch.autograd.grad(y, x, grad)
        return y, gx

    y_ref, g_ref = run(lambda x: torch.nn.functional.max_pool2d(x, 2), "max_pool2d")
    y, gx = run(spike_max_pool, "spike")
    assert torch.equal(y, y_ref) and torch.equal(gx, g_ref)
    assert float(gx.abs().sum()) > 0
    # max_pool2d: the float input and int64 indices; spike_max_pool: one bool per input element
    assert saved["spike"] == s.numel()
    assert saved["max_pool2d"] == s.numel() * s.element_size() + s.numel() // 4 * 8
    with torch.no_grad():  # no graph: plain max_pool2d, nothing saved
        assert torch.equal(spike_max_pool(s), y_ref)


@pytest.mark.parametrize("spike_output", ["rate", "count", "filtered"])
@pytest.mark.parametrize("neuron, pool", [("lif", True), ("synaptic", False)])
def test_forward_local_is_the_readout_of_forward_without_the_spike_train_graph(spike_output, neuron, pool):
    """Layer-local blocks sum their readout step by step and hand the next block a detached bool spike train:
    the same readout and gradient as ``readout(block(x))`` (bitwise for count and rate), the same spikes."""
    cfg = _lif(neuron=neuron, timesteps=6, threshold=0.4, spike_output=spike_output, encoding="rate")
    torch.manual_seed(0)
    block = spiking_block(ConvBlock(2, 5, pool=pool), cfg)
    x = encode(torch.rand(3, 2, 6, 6), cfg)
    grads = []
    for local in (False, True):
        block.zero_grad()
        if local:
            z, nxt = block.forward_local(x)
        else:
            out = block(x)
            z, nxt = readout(out, cfg), out.detach()
        (z * torch.linspace(-1, 1, z.numel()).reshape(z.shape)).sum().backward()
        grads.append((z.detach(), nxt, block.conv.weight.grad.clone()))
    (z0, s0, g0), (z1, s1, g1) = grads
    assert s1.dtype == torch.bool and not s1.requires_grad and torch.equal(s1.to(s0.dtype), s0)
    assert float(s0.sum()) > 0 and float(g0.abs().sum()) > 0
    if spike_output == "filtered":
        torch.testing.assert_close(z1, z0)
        torch.testing.assert_close(g1, g0)
    else:
        assert torch.equal(z1, z0) and torch.equal(g1, g0)
    # the next block takes the bool train as the float one
    nxt_block = spiking_block(ConvBlock(5, 3, pool=False), cfg)
    assert torch.equal(nxt_block(s1), nxt_block(s0))


def test_reset_matters():
    """Control: subtract and no reset differ once a neuron has spiked, so the reference above can fail."""
    cur = np.full((10, 1), 0.6)
    a, _ = _reference_lif(cur, 0.9, 1.0, "subtract")
    b, _ = _reference_lif(cur, 0.9, 1.0, "none")
    assert a.sum() < b.sum()


def test_encodings_and_readouts():
    torch.manual_seed(0)
    x = torch.tensor([[-1.0, 0.0, 0.25, 0.5, 1.0, 3.0]])
    d = encode(x, _lif(timesteps=4))
    assert d.shape == (4, 1, 6) and d.stride(0) == 0 and torch.equal(d[2], x)
    r = encode(x.expand(2000, 6), _lif(timesteps=5, encoding="rate"))  # Bernoulli p = clip(x, 0, 1)
    np.testing.assert_allclose(r.mean(dim=(0, 1)).numpy(), [0, 0, 0.25, 0.5, 1, 1], atol=0.02)
    lat = encode(x, _lif(timesteps=6, encoding="latency"))
    assert lat.sum(0).max() <= 1  # at most one spike per input
    first = lat[:, 0].argmax(0)
    assert lat[:, 0, :2].sum() == 0 and first[5] <= first[4] < first[3] < first[2]  # brighter fires earlier
    s = torch.bernoulli(torch.full((7, 3, 2), 0.3))
    assert torch.equal(readout(s, _lif(spike_output="count")), s.sum(0))
    assert torch.allclose(readout(s, _lif(spike_output="rate")), s.mean(0))
    ones = torch.ones(7, 3, 2)
    assert torch.allclose(readout(ones, _lif(spike_output="filtered", beta=0.8)), torch.ones(3, 2))
    late = torch.zeros(7, 1)
    late[-1] = 1
    early = torch.zeros(7, 1)
    early[0] = 1
    f = _lif(spike_output="filtered", beta=0.8)
    assert readout(late, f) > readout(early, f) > 0  # the filter weights recent spikes more


# ----------------------------------------------------------------------------------------------------------------
# 2. T = 1: the spiking layer's gradient is the explicit three-factor CLAPP rule with the surrogate as post factor

def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / (a.norm() + b.norm()))


def _spiking_case(surrogate: str, pool: bool, asymmetric: bool):
    torch.manual_seed(0)
    batch, img, patch, stride = 5, 12, 6, 2  # 4x4 grid of 6x6 patches
    x = torch.randn(batch, 1, img, img, dtype=torch.float64)
    patches, grid = extract_patches(x, patch, stride)
    cfg = PatchCPCConfig(asymmetric_w=asymmetric, either_pos_or_neg=True, negatives="saccade", negative_samples=1,
                         prediction_steps=2, patch_size=6, patch_stride=2, batch_size=batch, neuron="lif",
                         timesteps=1, threshold=0.3, surrogate=surrogate)
    block = spiking_block(ConvBlock(1, 6, pool=pool), cfg).double()
    gen = torch.Generator().manual_seed(3)
    K, C = 2, 6
    w_pred = (torch.randn(K, C, C, dtype=torch.float64, generator=gen) * 2.0).requires_grad_()
    w_retro = (torch.randn(K, C, C, dtype=torch.float64, generator=gen) * 2.0).requires_grad_() if asymmetric else None
    pairs = [p.to(torch.device("cpu"), torch.float64) for p in sample_pairs(cfg, batch, grid, gen)]
    return cfg, block, patches, grid, w_pred, w_retro, pairs


@pytest.mark.parametrize("surrogate", ["straight_through_estimator", "heaviside", "fast_sigmoid", "atan"])
@pytest.mark.parametrize("pool", [False, True])
@pytest.mark.parametrize("asymmetric", [True, False])
def test_t1_spiking_gradient_equals_explicit_three_factor_rule(surrogate, pool, asymmetric):
    cfg, block, patches, grid, w_pred, w_retro, pairs = _spiking_case(surrogate, pool, asymmetric)
    spikes = block(encode(patches, cfg))  # (1, n, C, s, s)
    assert 0 < float(spikes.detach().mean()) < 1, "the case needs spiking and silent neurons"
    h = pooled(readout(spikes, cfg), grid).reshape(-1, 6)
    hinge_loss(h, w_pred, w_retro, pairs, pairs).backward()
    rule = three_factor_grads(block, patches, grid, w_pred.detach(), None if w_retro is None else w_retro.detach(),
                              pairs, pairs, transfer=block.step_response)
    auto = {"conv.weight": block.conv.weight.grad, "conv.bias": block.conv.bias.grad, "W_pred": w_pred.grad}
    if w_retro is not None:
        auto["W_retro"] = w_retro.grad
    assert set(rule) == set(auto)
    for name, g in auto.items():
        assert g.norm() > 0, f"{name}: zero gradient, the case tests nothing"
        assert rel_err(rule[name], g) < 1e-6, f"{name}: relative error {rel_err(rule[name], g):.2e}"


def test_t1_rule_needs_the_surrogate_post_factor():
    """Control: the rate post factor 1[a > 0] in place of the surrogate derivative breaks the equality."""
    cfg, block, patches, grid, w_pred, w_retro, pairs = _spiking_case("fast_sigmoid", True, True)
    h = pooled(readout(block(encode(patches, cfg)), cfg), grid).reshape(-1, 6)
    hinge_loss(h, w_pred, w_retro, pairs, pairs).backward()

    def wrong(a):
        s, _ = block.step_response(a)
        return s, (a > 0).to(a.dtype)

    rule = three_factor_grads(block, patches, grid, w_pred.detach(), w_retro.detach(), pairs, pairs, transfer=wrong)
    assert rel_err(rule["conv.weight"], block.conv.weight.grad) > 1e-2


# ----------------------------------------------------------------------------------------------------------------
# 3. layer-local training: no gradient crosses layers; end-to-end BPTT does

def _lpl(**kw) -> LPLConfig:
    base = dict(epochs=1, batch_size=32, warmup_epochs=0.5, encoder="conv", conv_channels=(4, 8), flip_p=0.0,
                blur_p=0.0, probe_train_images=200, probe_epochs=3, probe_lr=1e-2, eval_batch_size=128,
                neuron="lif", timesteps=4, threshold=0.5, encoding="rate", encoding_gain=0.5)
    base.update(kw)
    return LPLConfig(**base)


def _data(n_train=128, n_test=64):
    return make_synthetic(n_train=n_train, n_test=n_test, size=16, seed=0)


def _block0_grads_lpl(cfg: LPLConfig, perturb: bool) -> tuple[torch.Tensor, torch.Tensor]:
    data = _data()
    rule = LPL(cfg, data, seeds=(0,))
    if perturb:  # change the layer above: its loss and output change, block 0's own loss does not
        with torch.no_grad():
            rule.encoder.blocks[1].conv.weight.mul_(3.0)
    v1, v2 = rule.views.pair(data.x_train[:16], torch.Generator().manual_seed(1))
    rule.opt.step = lambda: None
    torch.manual_seed(5)  # the Poisson input draw
    rule.train_step(v1, v2, None)
    return rule.encoder.blocks[0].conv.weight.grad.clone(), rule.encoder.blocks[1].conv.weight.grad.clone()


@pytest.mark.parametrize("neuron", ["lif", "synaptic"])
def test_lpl_spiking_layer_local_gradients_stay_in_their_layer(neuron):
    g0, g1 = _block0_grads_lpl(_lpl(neuron=neuron), perturb=False)
    p0, p1 = _block0_grads_lpl(_lpl(neuron=neuron), perturb=True)
    assert g0.norm() > 0 and g1.norm() > 0
    assert torch.equal(g0, p0), "layer-local: block 0's gradient must not depend on the layer above"
    assert not torch.allclose(g1, p1)
    # end-to-end BPTT: the top loss reaches block 0 through the layer above and through time
    e0, _ = _block0_grads_lpl(_lpl(neuron=neuron, end_to_end=True), perturb=False)
    f0, _ = _block0_grads_lpl(_lpl(neuron=neuron, end_to_end=True), perturb=True)
    assert e0.norm() > 0 and not torch.allclose(e0, f0)


def test_clapp_spiking_layer_local_gradients_stay_in_their_layer():
    data = _data()

    def grads(perturb: bool, end_to_end: bool = False):
        cfg = replace_config(CLAPP.preset("synthetic"), dict(neuron="lif", timesteps=3, threshold=0.3, end_to_end=end_to_end,
                                       batch_size=8))
        rule = CLAPP(cfg, data, seeds=(0,), device=torch.device("cpu"))
        if perturb:
            with torch.no_grad():
                rule.encoder.blocks[1].conv.weight.mul_(3.0)
        for o in rule.opts:
            o.step = lambda: None
        rule.train_step(rule.prepare(data.x_train[:8], train=False))
        return rule.encoder.blocks[0].conv.weight.grad.clone()

    a, b = grads(False), grads(True)
    assert a.norm() > 0 and torch.equal(a, b)
    e, f = grads(False, True), grads(True, True)
    assert e.norm() > 0 and not torch.allclose(e, f)


# ----------------------------------------------------------------------------------------------------------------
# 4. files: same seed, same file; firing rates; bad input; silence

def _train(tmp_path, name, *sets):
    out = tmp_path / name
    rc = main(["train", "lpl", "--dataset", "digits", "--epochs", "1", "--seed", "0", "--no-progress",
               "--out", str(out), "--set", "neuron=lif", "--set", "timesteps=3", "--set", "encoding=rate",
               "--set", "probe_epochs=3", *[a for s in sets for a in ("--set", s)]])
    assert rc == 0
    return out


def test_same_seed_same_file_and_firing_rates(tmp_path):
    a, b = _train(tmp_path, "a.nc"), _train(tmp_path, "b.nc")
    da, db = xr.open_dataset(a), xr.open_dataset(b)
    assert set(da.data_vars) == set(db.data_vars)
    for k in da.data_vars:
        assert np.array_equal(da[k].values, db[k].values, equal_nan=True), k  # bitwise
    for layer in ("conv1", "conv2"):
        ra = xr.open_dataset(a, group=f"representations/{layer}")
        rb = xr.open_dataset(b, group=f"representations/{layer}")
        assert np.array_equal(ra["response"].values, rb["response"].values)
    for k in ("firing_rate", "firing_rate_silent_fraction", "train_firing_rate"):
        assert "layer" in da[k].dims and list(da[k].layer.values) == ["conv1", "conv2"]
    r = da["firing_rate"].isel(epoch=-1).values
    assert ((r > 0) & (r < 1)).all()
    assert "layer" in da["test_accuracy"].dims
    c = _train(tmp_path, "c.nc", "threshold=0.5")
    assert not np.array_equal(xr.open_dataset(c)["firing_rate"].values, da["firing_rate"].values)


@pytest.mark.parametrize("rule,args,match", [
    ("lpl", ["neuron=lif", "timesteps=0"], "timesteps must be an integer >= 1"),
    ("lpl", ["neuron=izhikevich-typo"], "choices: lif, rate, synaptic"),
    ("lpl", ["neuron=lif", "encoding=poison"], "choices: direct, latency, rate"),
    ("lpl", ["neuron=lif", "surrogate=atann"], "did you mean 'atan'"),
    ("lpl", ["neuron=lif", "reset_mechanism=soft"], "choices: none, subtract, zero"),
    ("lpl", ["neuron=lif", "threshold=0"], "threshold must be"),
    ("lpl", ["neuron=lif", "threshold=-1"], "threshold must be"),
    ("lpl", ["neuron=lif", "beta=1.5"], "beta must be"),
    ("lpl", ["neuron=lif", "baseline=pixels"], "baseline 'pixels'"),
    ("clapp", ["neuron=lif", "timesteps=-2"], "timesteps must be"),
    ("bp", ["neuron=lif"], "trains rate units only"),
    ("corinfomax", ["timesteps=8"], "trains rate units only"),
])
def test_bad_neuron_input_is_one_line_exit_2(rule, args, match, tmp_path, capsys):
    out = tmp_path / "r.nc"
    rc = main(["train", rule, "--dataset", "digits", "--epochs", "1", "--out", str(out),
               *[a for s in args for a in ("--set", s)]])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and match in err, err
    assert not out.exists()


def test_silent_layer_stops_naming_layer_and_epoch_and_keeps_finished_epochs(tmp_path):
    class Silenced(LPL):
        def train_epoch(self, epoch):
            if epoch == 2:  # the second layer can no longer reach its threshold
                self.encoder.blocks[1].neuron.threshold.fill_(1e9)
            return super().train_epoch(epoch)

    out = tmp_path / "run.nc"
    with pytest.raises(SilentLayerError, match=r"layer conv2 .* epoch 2") as e:
        fit(Silenced, _lpl(epochs=3), _data(), RunContext(dataset="synthetic", out=out))
    assert isinstance(e.value, DivergenceError)
    msg = str(e.value)  # the advice names the settings in force
    assert "lower threshold (now " in msg and "raise timesteps (now " in msg and "layer below fires" in msg
    ds = xr.open_dataset(out)
    assert ds.sizes["epoch"] == 1 and float(ds["train_firing_rate"].sel(layer="conv2").isel(epoch=0)) > 0


def test_rate_default_is_unchanged():
    """neuron='rate' builds the plain ReLU blocks: no spiking block, no firing-rate variables."""
    rule = LPL(_lpl(neuron="rate", epochs=1), _data(), seeds=(0,))
    assert not any(isinstance(b, SpikingBlock) for b in rule.encoder.blocks)
    assert rule.encoder.neurons is None
    spk = LPL(_lpl(), _data(), seeds=(0,))
    # twins: the spiking net keeps the rate net's synapses, so the same seed gives the same initial weights
    for (k, p), (k2, q) in zip(rule.encoder.named_parameters(), spk.encoder.named_parameters()):
        assert k == k2 and torch.equal(p, q)
