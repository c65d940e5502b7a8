"""DPC hook sites (ratenets/analysis/dpc_hooks.py): activations and backward errors against autograd's own
dL/d(output), the ConvGRU step each mode reads, the dry pass leaving the model untouched, the USI of identical
U/D distributions, a planted surprise unit, and the analysis script on a tiny run."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from ratenets.analysis.dpc_hooks import HOOK_SITES, HOOK_TYPES, hook_pass, site_modules, surprise_index, unit_stats
from ratenets.rules.dpc import DPCNet, cpu_preset, dense_infonce

NET_CFG = dataclasses.replace(cpu_preset(), img_px=32, canvas_px=32, feature_dim=8, gru_dropout=0.1)


def _net(pred_step: int = 1, seed: int = 0) -> DPCNet:
    torch.manual_seed(seed)
    return DPCNet(NET_CFG, in_channels=1).double()


def _batch(b: int = 3, n: int = 4, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, n, 1, NET_CFG.seq_len, 32, 32, generator=g, dtype=torch.float64)


def _loss(p, t):
    return dense_infonce(p, t)[0].mean()


def _autograd_reference(net: DPCNet, x: torch.Tensor, pred_step: int) -> dict[str, list[tuple[torch.Tensor, ...]]]:
    """Every call's output and dL/d(output) at each site, from retain_grad (no backward hooks)."""
    outs: dict[str, list[torch.Tensor]] = {s: [] for s in HOOK_SITES}
    handles = []
    for site, mod in site_modules(net).items():
        def keep(module, inp, out, site=site):
            out.retain_grad()
            outs[site].append(out)
        handles.append(mod.register_forward_hook(keep))
    net.eval()
    pred, target = net(x, pred_step)
    _loss(pred, target).backward()
    for h in handles:
        h.remove()
    net.zero_grad(set_to_none=True)
    return {s: [(o.detach(), None if o.grad is None else o.grad.detach()) for o in v] for s, v in outs.items()}


@pytest.mark.parametrize("pred_step", [1, 2])
@pytest.mark.parametrize("mode", ["original", "aligned"])
def test_hook_errors_are_autograd_gradients_of_the_loss(pred_step, mode):
    net, x = _net(), _batch()
    b, n = x.shape[:2]
    ref = _autograd_reference(net, x, pred_step)
    got = hook_pass(net, [x], pred_step, _loss, contextual=mode)
    assert set(got) == {(s, t) for s in HOOK_SITES for t in HOOK_TYPES}

    def flat(ts):
        return torch.stack(ts, 1).flatten(1).numpy()

    # encoder: the temporal pool output of the predicted blocks (the last P of N) and its gradient
    enc_out, enc_grad = ref["encoder"][0]
    np.testing.assert_allclose(got[("encoder", "activations")],
                               enc_out.view(b, n, -1)[:, n - pred_step:].flatten(1).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(got[("encoder", "errors")],
                               enc_grad.view(b, n, -1)[:, n - pred_step:].flatten(1).numpy(), rtol=1e-12, atol=1e-15)
    # predictive: phi's output (the predictions of the predicted blocks) and dL/dzhat
    pr = ref["predictive"]
    np.testing.assert_allclose(got[("predictive", "activations")], flat([o for o, _ in pr]), rtol=0, atol=0)
    grads = [g for _, g in pr] if mode == "aligned" else [g for _, g in pr][::-1]
    np.testing.assert_allclose(got[("predictive", "errors")], flat(grads), rtol=1e-12, atol=1e-15)
    # contextual: the out_gate (candidate conv) calls; N calls, of which the last never reaches the loss
    ctx = ref["contextual"]
    assert len(ctx) == n and ctx[-1][1] is None and all(g is not None for _, g in ctx[:-1])
    steps = list(range(n - pred_step - 1, n - 1))              # the calls whose new state issues a prediction
    if mode == "original":
        act = [ctx[i][0] for i in range(pred_step)]              # the first P calls (block 0 = A first)
        err = [ctx[i][1] for i in steps[::-1]]                   # firing order: reverse time
    else:
        act = [ctx[i][0] for i in steps]
        err = [ctx[i][1] for i in steps]
    np.testing.assert_allclose(got[("contextual", "activations")], flat(act), rtol=0, atol=0)
    np.testing.assert_allclose(got[("contextual", "errors")], flat(err), rtol=1e-12, atol=1e-15)
    # the errors are not trivially zero, and the two contextual modes read different steps
    assert np.abs(got[("predictive", "errors")]).max() > 1e-6
    assert not np.allclose(ctx[0][0].numpy(), ctx[n - 2][0].numpy())


def test_dry_pass_leaves_the_model_untouched():
    net, x = _net(), _batch()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    hook_pass(net, [x, _batch(seed=2)], 1, _loss)
    assert net.training, "training mode restored"
    assert all(p.grad is None for p in net.parameters()), "parameter gradients cleared"
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    for mod in site_modules(net).values():
        assert not mod._forward_hooks and not mod._backward_hooks, "hooks removed"


def test_dry_pass_is_in_eval_mode():
    """Dropout (p = 0.1 on the ConvGRU state) is off: two passes over the same batch agree exactly."""
    net, x = _net(), _batch()
    net.train()
    a = hook_pass(net, [x], 1, _loss)
    b = hook_pass(net, [x], 1, _loss)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_usi_of_identical_distributions_is_near_zero_and_a_planted_unit_is_found():
    rng = np.random.default_rng(0)
    n_d, n_u, units = 3000, 3000, 400
    vals = rng.normal(size=(n_d + n_u, units)) * rng.uniform(0.5, 2.0, units) + rng.normal(size=units)
    labels = np.r_[np.full(n_d, 3), np.full(n_u, 4)][:, None]        # D = 3, U = 4 (TYPE_CODE order)
    mean, sd, count = unit_stats(vals, labels, [3, 4])
    assert count.tolist() == [[n_d], [n_u]]
    usi = surprise_index(mean[1], sd[1], mean[0], sd[0])
    assert abs(usi.mean()) < 0.01 and np.abs(usi).max() < 0.15      # SE of one unit's USI ~ 0.026
    planted = vals.copy()
    scale = vals[:, 17].std()
    planted[n_d:, 17] += 1.0 * scale                                 # U shifted by one SD in unit 17
    mean, sd, _ = unit_stats(planted, labels, [3, 4])
    usi = surprise_index(mean[1], sd[1], mean[0], sd[0])
    assert int(np.argmax(usi)) == 17
    assert 0.85 < usi[17] < 1.15


def test_unit_stats_groups_by_prediction_step_and_usi_is_nan_where_undefined():
    vals = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 30.0]])        # P = 2 steps of 1 unit
    labels = np.array([[3, 4], [3, 3], [4, 3]])
    mean, sd, count = unit_stats(vals, labels, [3, 4])
    np.testing.assert_allclose(mean, [[2.0, 25.0], [5.0, 10.0]])
    np.testing.assert_allclose(sd, [[1.0, 5.0], [0.0, 0.0]])          # ddof 0, as np.std in the original
    assert count.tolist() == [[2, 2], [1, 1]]
    usi = surprise_index(np.array([1.0, 2.0, 2.0]), np.array([0.0, 1.0, 0.0]),
                         np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    assert np.isnan(usi[0]) and usi[1] == 2.0 and np.isnan(usi[2])
    np.testing.assert_allclose(surprise_index(np.array([3.0]), np.array([1.0]), np.array([0.0]), np.array([2.0])),
                               [3.0 / np.sqrt(2.5)])


def test_analysis_script_on_a_tiny_run(tmp_path, capsys):
    import importlib.util

    import xarray as xr

    from ratenets.rules.dpc import DPC
    from ratenets.train import RunContext, fit

    spec = importlib.util.spec_from_file_location("gabor_surprise", "analyses/gabor_surprise.py")
    gs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gs)
    cfg = dataclasses.replace(cpu_preset(), epochs=3, unexpected_onset_epoch=1, img_px=32, canvas_px=32,
                              feature_dim=8, batch_size=4, train_clips=8, probe_clips_per_type=8, hook_clips=24,
                              u_prob=0.5)
    run = tmp_path / "run.nc"
    fit(DPC, cfg, DPC.load_data(cfg, "gabor", None), RunContext(dataset="gabor", seeds=(0,), out=run))
    assert gs.main(["--from", str(run), "--out-dir", str(tmp_path / "an")]) == 0
    ds = xr.open_dataset(tmp_path / "an" / "gabor_surprise.nc")
    assert ds["surprise_index"].dims == ("epoch", "site", "hook_type", "unit")
    assert ds["usi_mean"].sizes == {"epoch": 4, "site": 3, "hook_type": 2}
    assert list(ds["comparison"].values) == ["0v1", "0v2", "1v2"]
    assert np.isfinite(ds["usi_epoch_pair_p"].sel(comparison="0v1")).all()
    assert (ds["usi_epoch_pair_p_bonferroni"] >= ds["usi_epoch_pair_p"]).all()
    assert np.isfinite(ds["usi_corr_bootstrap_sd"].isel(epoch=slice(1, None))).all()
    assert ds["epochs_since_onset"].values.tolist() == [-1, 0, 1, 2]
    ds.close()
    for name in ("loss_by_image_type.png", "usi_distribution.png", "usi_over_epochs.png"):
        assert (tmp_path / "an" / name).stat().st_size > 0
    # a results file without hook-site data: one line, exit 2
    old = xr.open_dataset(run).load()
    old.drop_vars([v for v in old.data_vars if "hook" in v]).to_netcdf(tmp_path / "old.nc")
    capsys.readouterr()
    assert gs.main(["--from", str(tmp_path / "old.nc"), "--out-dir", str(tmp_path / "an2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "hook" in err and "\n" not in err and "Traceback" not in err


def test_a_hook_set_without_u_is_a_config_error():
    from bridge.errors import ConfigError
    from ratenets.rules.dpc import DPC

    cfg = dataclasses.replace(cpu_preset(), img_px=32, canvas_px=32, feature_dim=8, batch_size=4, train_clips=8,
                              probe_clips_per_type=8, hook_clips=8, u_prob=0.0, baseline_epoch=False)
    with pytest.raises(ConfigError, match="hook clips have no predicted U"):
        DPC(cfg, DPC.load_data(cfg, "gabor", None), seeds=(0,), device=torch.device("cpu"))
