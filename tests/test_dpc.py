"""DPC: dense InfoNCE vs a NumPy loop, all-gather with a 1-process gloo group, ConvGRU, encoders, config errors,
a tiny seeded run (results contract, determinism, resume) and the CLI's one-line errors."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import xarray as xr

from bridge.errors import ConfigError
from ratenets.rules.dpc import DPC, ConvGRU1x1, DPCConfig, block_scores, cpu_preset, dense_infonce

TINY = dataclasses.replace(cpu_preset(), epochs=2, unexpected_onset_epoch=2, img_px=32, canvas_px=32,
                           feature_dim=8, batch_size=4, train_clips=8, probe_clips_per_type=8, hook_clips=8,
                           u_prob=0.5)


def _naive_infonce(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Loop transcription of Han et al. (2019) Eq. (5): -log softmax over every (b', p', s') of the raw dot product."""
    b, p, d, h, w = pred.shape
    keys = [(bb, pp, yy, xx) for bb in range(b) for pp in range(p) for yy in range(h) for xx in range(w)]
    out = np.zeros((b, p, h * w))
    for (bb, pp, yy, xx) in keys:
        q = pred[bb, pp, :, yy, xx]
        logits = np.array([q @ target[k0, k1, :, k2, k3] for (k0, k1, k2, k3) in keys])
        pos = logits[keys.index((bb, pp, yy, xx))]
        mx = logits.max()
        out[bb, pp, yy * w + xx] = -(pos - mx - math.log(np.exp(logits - mx).sum()))
    return out


def test_dense_infonce_matches_numpy_loop():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 2, 5, 2, 2, generator=g, dtype=torch.float64)
    target = torch.randn(3, 2, 5, 2, 2, generator=g, dtype=torch.float64)
    loss, correct, scores = dense_infonce(pred, target)
    np.testing.assert_allclose(loss.numpy(), _naive_infonce(pred.numpy(), target.numpy()), rtol=1e-10, atol=1e-12)
    assert scores.shape == (24, 24)
    # a perfect predictor (target = prediction, unit-norm cells) is always right
    unit = pred / pred.norm(dim=2, keepdim=True)
    _, ok, _ = dense_infonce(unit, unit)
    assert ok.all()
    bs = block_scores(scores, 3, 2, 4)
    assert bs.shape == (6, 6)
    np.testing.assert_allclose(float(bs[1, 4]), float(scores.view(6, 4, 6, 4)[1, :, 4, :].diagonal().mean()))


def test_all_gather_with_single_process_gloo_group(tmp_path):
    import torch.distributed as dist

    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 1, 4, 2, 2, generator=g, requires_grad=True)
    target = torch.randn(2, 1, 4, 2, 2, generator=g, requires_grad=True)
    ref_loss, _, _ = dense_infonce(pred, target)
    ref_loss.mean().backward()
    ref_grads = (pred.grad.clone(), target.grad.clone())
    pred.grad = target.grad = None
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        assert dist.is_initialized()
        loss, _, scores = dense_infonce(pred, target)
        loss.mean().backward()
    finally:
        dist.destroy_process_group()
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(pred.grad, ref_grads[0])
    torch.testing.assert_close(target.grad, ref_grads[1])


def test_convgru_step_matches_gru_equations():
    torch.manual_seed(0)
    gru = ConvGRU1x1(3, 4, dropout=0.0).double()
    x = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    h = torch.randn(2, 4, 2, 2, dtype=torch.float64)
    new = gru.step(x, h)
    wg, bg = gru.gates.weight[:, :, 0, 0], gru.gates.bias
    wc, bc = gru.cand.weight[:, :, 0, 0], gru.cand.bias
    xv, hv = x.permute(0, 2, 3, 1), h.permute(0, 2, 3, 1)       # (B, h, w, C): 1x1 conv = per-cell linear map
    gates = torch.sigmoid(torch.cat([xv, hv], -1) @ wg.T + bg)
    r, u = gates[..., :4], gates[..., 4:]
    c = torch.tanh(torch.cat([xv, r * hv], -1) @ wc.T + bc)
    torch.testing.assert_close(new, ((1 - u) * hv + u * c).permute(0, 3, 1, 2))
    w = gru.gates.weight[:, :, 0, 0]
    torch.testing.assert_close(w.T @ w, torch.eye(7, dtype=w.dtype), atol=1e-6, rtol=0)  # orthonormal columns


@pytest.mark.parametrize("name,px,shape", [("small3d", 32, (8, 2, 2, 2)), ("resnet18_2d3d", 64, (16, 2, 2, 2))])
def test_encoder_shapes(name, px, shape):
    from ratenets.encoders.video import video_encoder

    enc = video_encoder(name, 1, shape[0])
    out = enc(torch.randn(2, 1, 5, px, px))
    assert out.shape == (2, *shape)
    assert (out < 0).any(), "the last layer has no ReLU"


@pytest.mark.parametrize("changes,word", [
    ({"num_seq": 1}, "num_seq"), ({"num_seq": 3, "pred_step": 3}, "num_seq"), ({"u_prob": 1.2}, "u_prob"),
    ({"u_prob": -0.5}, "u_prob"), ({"img_px": 16}, "img_px"), ({"encoder": "resnet18_2d3d", "img_px": 32}, "img_px"),
    ({"unexpected_onset_epoch": 0}, "unexpected_onset_epoch"), ({"batch_size": 1}, "batch_size"),
    ({"hook_clips": 1}, "hook_clips"), ({"contextual_steps": "last"}, "contextual_steps")])
def test_config_errors(changes, word):
    with pytest.raises(ConfigError, match=word):
        dataclasses.replace(cpu_preset(), **changes)


def test_onset_beyond_last_epoch_is_an_error():
    cfg = dataclasses.replace(cpu_preset(), epochs=3, unexpected_onset_epoch=3)
    cfg.check_schedule()
    with pytest.raises(ConfigError, match="beyond the last epoch"):
        DPC.load_data(dataclasses.replace(cfg, unexpected_onset_epoch=4), "gabor", None)


def _fit(cfg, tmp_path, name, **kw):
    from ratenets.train import RunContext, fit

    ctx = RunContext(dataset="gabor", seeds=(0,), out=tmp_path / f"{name}.nc", **kw)
    ds, rule = fit(DPC, cfg, DPC.load_data(cfg, "gabor", None), ctx)
    return ds, rule


def test_tiny_run_results_determinism_and_resume(tmp_path):
    from bridge.io import list_groups, open_group

    ds, rule = _fit(TINY, tmp_path, "a")
    lt = ds["loss_by_image_type"]
    assert lt.dims == ("epoch", "image_type")
    assert list(lt["image_type"].values) == ["A", "B", "C", "D", "U", "G"]
    assert ds["surprise_index"].dims == ("epoch", "site", "hook_type", "unit")
    assert list(ds["site"].values) == ["encoder", "contextual", "predictive"]
    assert list(ds["hook_type"].values) == ["activations", "errors"]
    assert ds["surprise_index"].sizes["unit"] == 1 * 8 * 2 * 2
    assert ds["hook_mean"].dims == ("epoch", "site", "hook_type", "hook_image_type", "unit")
    assert list(ds["hook_image_type"].values) == ["D", "U"]
    assert "baseline_loss_by_image_type" in ds and ds["baseline_loss_by_image_type"].dims == ("image_type",)
    # U appears in training only from the onset epoch
    assert ds["train_unexpected_clips"].values[0] == 0
    assert {"test_accuracy", "train_loss"} <= set(ds.data_vars)
    groups = list_groups(tmp_path / "a.nc")
    assert {"representations/encoder", "representations/aggregator", "representations/predictor"} <= set(groups)
    rep = open_group(tmp_path / "a.nc", "representations/predictor")
    assert rep["response"].shape == (48, 8)
    # same seed, same result
    ds2, _ = _fit(TINY, tmp_path, "b")
    xr.testing.assert_allclose(ds["loss_by_image_type"], ds2["loss_by_image_type"], rtol=0, atol=0)
    # interrupted after epoch 1, then resumed: identical to the straight run
    from ratenets.train import RunContext, fit

    class Stop(Exception):
        pass

    def stop(epoch, metrics):
        raise Stop

    ctx = RunContext(dataset="gabor", seeds=(0,), out=tmp_path / "c.nc", checkpoint=tmp_path / "c.ckpt")
    with pytest.raises(Stop):
        fit(DPC, TINY, DPC.load_data(TINY, "gabor", None), ctx, on_epoch=stop)
    ds3, _ = _fit(TINY, tmp_path, "c", checkpoint=tmp_path / "c.ckpt", resume=True)
    xr.testing.assert_allclose(ds["loss_by_image_type"], ds3["loss_by_image_type"], rtol=0, atol=0)
    xr.testing.assert_allclose(ds["baseline_test_loss"], ds3["baseline_test_loss"], rtol=0, atol=0)
    xr.testing.assert_allclose(ds["hook_mean"], ds3["hook_mean"], rtol=0, atol=0)


def test_cli_bad_input_is_one_line(capsys, tmp_path):
    from bridge.cli import main

    base = ["train", "dpc", "--dataset", "gabor", "--epochs", "3", "--out", str(tmp_path / "x.nc")]
    for extra in (["--set", "unexpected_onset_epoch=5"], ["--set", "u_prob=2"], ["--set", "num_seq=1"],
                  ["--set", "img_px=8"], ["--device", "cuda"] if not torch.cuda.is_available() else ["--set", "lr=-1"]):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("ratespike: error:") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.nc").exists()


def test_every_config_field_survives_set():
    from bridge.config import apply_overrides

    cfg = cpu_preset()
    items = [f"{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)]
    assert apply_overrides(DPCConfig(), items) == cfg
