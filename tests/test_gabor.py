"""Gabor-sequence generator: layout, cycle labels, U replacement, grey G, and the patch kernel vs a NumPy reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ratenets.gabor as gabor
from bridge.errors import ConfigError
from ratenets.gabor import IMAGE_TYPES, TYPE_CODE, GaborConfig, GaborSequences, make_layout, render_images

SMALL = GaborConfig(canvas_px=48, img_px=48)


def test_layout_is_seeded_and_u_layout_follows_flag():
    a, b, c = make_layout(SMALL, 1), make_layout(SMALL, 1), make_layout(SMALL, 2)
    np.testing.assert_array_equal(a.centers, b.centers)
    assert not np.array_equal(a.centers, c.centers)
    lo, hi = SMALL.pos_margin * 48, (1 - SMALL.pos_margin) * 48
    assert a.centers.min() >= math.floor(lo) and a.centers.max() <= hi
    # sizes: 10..20 deg at 120 deg per canvas width
    drawn = np.delete(a.sizes, TYPE_CODE["G"], axis=0)
    assert drawn.min() >= 10 * 48 / 120 and drawn.max() <= 20 * 48 / 120
    assert (a.sizes[TYPE_CODE["G"]] == 0).all()
    assert not np.array_equal(a.centers[TYPE_CODE["U"]], a.centers[TYPE_CODE["D"]])
    same = make_layout(GaborConfig(canvas_px=48, img_px=48, diff_u_possizes=False), 1)
    np.testing.assert_array_equal(same.centers[TYPE_CODE["U"]], same.centers[TYPE_CODE["D"]])


def test_cycle_labels_hold_frames_and_grey_screen():
    gen = GaborSequences(SMALL, 0)
    c = gen.clips(3, 30, np.random.default_rng(0), unexpected=False)
    assert c.video.shape == (3, 30, 48, 48) and c.video.dtype == torch.uint8
    expect = np.repeat([TYPE_CODE[t] for t in "ABCDGA"], 5)
    np.testing.assert_array_equal(c.image_type, np.tile(expect, (3, 1)))
    g = c.image_type == TYPE_CODE["G"]
    assert (c.video[torch.from_numpy(g)] == 127).all(), "G must be mid-grey, not black"
    assert np.isnan(c.mean_ori[g]).all()
    # frames of one image are identical; images differ
    assert torch.equal(c.video[:, 0], c.video[:, 4]) and not torch.equal(c.video[:, 0], c.video[:, 5])
    # one mean orientation per cycle from the 8 values; redrawn at the next A
    m = c.mean_ori[:, :20]
    assert (m == m[:, :1]).all() and np.isin(m, np.arange(8) * 45.0).all()
    assert not c.is_unexpected.any()


def test_u_replaces_only_d_with_its_probability_and_rotated_mean():
    cfg = GaborConfig(canvas_px=32, img_px=32, gab_img_len=1, gray=False)
    gen = GaborSequences(cfg, 0)
    c = gen.clips(400, 4, np.random.default_rng(1), unexpected=True, u_prob=0.25)
    last = c.image_type[:, 3]
    assert set(np.unique(last)) == {TYPE_CODE["D"], TYPE_CODE["U"]}
    assert (c.image_type[:, :3] == np.array([0, 1, 2])).all()
    frac = (last == TYPE_CODE["U"]).mean()
    assert abs(frac - 0.25) < 4 * math.sqrt(0.25 * 0.75 / 400)
    u = last == TYPE_CODE["U"]
    np.testing.assert_allclose(c.mean_ori[u, 3], (c.mean_ori[u, 0] + 90) % 360)
    np.testing.assert_array_equal(c.is_unexpected[:, 3], u)
    none = gen.clips(50, 4, np.random.default_rng(1), unexpected=False, u_prob=1.0)
    assert not none.is_unexpected.any()
    forced = gen.clips(5, 4, np.random.default_rng(1), unexpected=False, force_u=np.ones(5, bool))
    assert forced.is_unexpected[:, 3].all()


def test_roll_starts_anywhere_in_the_cycle():
    cfg = GaborConfig(canvas_px=32, img_px=32, gab_img_len=1, roll=True)
    c = GaborSequences(cfg, 0).clips(200, 5, np.random.default_rng(2), unexpected=False)
    assert set(np.unique(c.image_type[:, 0])) == {TYPE_CODE[t] for t in "ABCDG"}


def test_orientation_jitter_is_von_mises_with_kappa_16(monkeypatch):
    seen = {}
    real = gabor.render_images

    def spy(cfg, layout, types, oris, device=None):
        seen["types"], seen["oris"] = types, oris
        return real(cfg, layout, types, oris, device)

    monkeypatch.setattr(gabor, "render_images", spy)
    cfg = GaborConfig(canvas_px=32, img_px=32, gab_img_len=1, gray=False)
    c = GaborSequences(cfg, 0).clips(100, 4, np.random.default_rng(3), unexpected=False)
    mean = c.mean_ori.reshape(-1)[:, None]
    dev = np.deg2rad((seen["oris"] - mean + 180) % 360 - 180)
    # circular SD of a von Mises(kappa=16) ~ 0.254 rad
    assert abs(dev.std() - 0.254) < 0.02


def _cv2_gabor_reference(size: float, theta: float, cfg: GaborConfig) -> np.ndarray:
    """Naive transcription of cv2.getGaborKernel as the original calls it (3k-wide canvas, theta + pi)."""
    k = int(3 * size / (2 * math.sqrt(2 * math.log(2))))
    lam, sigma, psi = k / cfg.num_cycles_adj, k / 6, 2 * math.pi * cfg.psi_cycles
    ks = 3 * k
    half = ks // 2
    ker = np.zeros((ks, ks))
    th = theta + math.pi
    for y in range(-half, ks - half):
        for x in range(-half, ks - half):
            xr = x * math.cos(th) + y * math.sin(th)
            yr = -x * math.sin(th) + y * math.cos(th)
            ker[half - y, half - x] = math.exp(-(xr ** 2 + yr ** 2) / (2 * sigma ** 2)) * math.cos(
                2 * math.pi * xr / lam + psi)
    return ker


def test_single_patch_matches_numpy_cv2_reference():
    cfg = GaborConfig(canvas_px=64, img_px=64, num_gabors=1)
    layout = make_layout(cfg, 0)
    layout.centers[:] = 32
    layout.sizes[:4] = 20.0
    theta_deg = 30.0
    img = render_images(cfg, layout, np.array([0]), np.array([[theta_deg]]))[0].numpy().astype(float)
    ker = _cv2_gabor_reference(20.0, math.radians(theta_deg), cfg)
    half = ker.shape[0] // 2
    big = np.zeros((64 + 2 * ker.shape[0],) * 2)  # paste the kernel centred at (32, 32), then crop
    o = ker.shape[0] + 32 - half
    big[o:o + ker.shape[0], o:o + ker.shape[0]] = ker
    canvas = big[ker.shape[0]:ker.shape[0] + 64, ker.shape[0]:ker.shape[0] + 64]
    m = 1.1 * np.abs(canvas).max()
    expect = np.floor((canvas + m) / (2 * m) * 255)
    assert np.abs(img - expect).max() <= 1.0  # float32 vs float64 at the floor


def test_nearest_resize_and_config_errors():
    cfg = GaborConfig(canvas_px=64, img_px=32)
    c = GaborSequences(cfg, 0).clips(1, 5, np.random.default_rng(0), unexpected=False)
    assert c.video.shape == (1, 5, 32, 32)
    for bad in ({"u_prob": 1.5}, {"u_prob": -0.1}, {"num_gabors": 0}, {"size_range_deg": (20.0, 10.0)},
                {"num_cycles": 5.0}):
        with pytest.raises(ConfigError):
            GaborConfig(**bad)


def test_gabor_as_image_dataset_for_other_rules():
    from ratenets.data import load_dataset

    ds = load_dataset("gabor")
    assert ds.classes == IMAGE_TYPES
    assert ds.x_train.shape[1:] == (1, 32, 32) and ds.x_train.dtype == torch.uint8
    assert len(ds.x_train) == len(ds.y_train) == len(ds.extra["is_unexpected_train"])
    # consecutive frames: the label sequence follows the cycle, 5 frames per image
    y = ds.y_train[:25].numpy()
    np.testing.assert_array_equal(np.delete(y, range(15, 20)), np.repeat([0, 1, 2, 5], 5))
    assert len(set(y[15:20])) == 1 and y[15] in (TYPE_CODE["D"], TYPE_CODE["U"])


def test_fixed_mean_orientation_index_for_probe_sets():
    cfg = GaborConfig(canvas_px=32, img_px=32, gab_img_len=1)
    c = GaborSequences(cfg, 0).clips(8, 7, np.random.default_rng(0), unexpected=False, mean_idx=np.arange(8))
    oris = np.where(c.image_type == TYPE_CODE["G"], -1.0, c.mean_ori)
    np.testing.assert_array_equal(oris, np.where(c.image_type == TYPE_CODE["G"], -1.0, np.arange(8)[:, None] * 45.0))
