"""Views: batched SimCLR augmentations against torchvision image by image; temporal digit sequences."""
from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF

from bridge.errors import ConfigError
from ratenets.views import (SequenceParams, SequenceViews, SimCLRViewParams, SimCLRViews, _sample_crops,
                            adjust_brightness, adjust_contrast, adjust_hue, adjust_saturation, blur_kernel_size,
                            digit_sequences, gaussian_blur, resized_crop_flip)


def _rgb(b=4, h=12, w=10, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("ours,theirs", [(adjust_brightness, TF.adjust_brightness),
                                         (adjust_contrast, TF.adjust_contrast),
                                         (adjust_saturation, TF.adjust_saturation)])
def test_colour_ops_match_torchvision_per_image(ours, theirs):
    x = _rgb()
    f = torch.tensor([0.2, 0.9, 1.0, 1.7])
    got = ours(x, f)
    for i in range(len(x)):
        assert torch.allclose(got[i], theirs(x[i], float(f[i])), atol=1e-5)


def test_hue_matches_torchvision_per_image():
    x = _rgb(seed=1)
    f = torch.tensor([-0.2, -0.05, 0.0, 0.15])
    got = adjust_hue(x, f)
    for i in range(len(x)):
        assert torch.allclose(got[i], TF.adjust_hue(x[i], float(f[i])), atol=1e-4)


def test_blur_matches_torchvision_per_image():
    x = _rgb(h=16, w=16, seed=2)
    sig = torch.tensor([0.1, 0.7, 1.3, 2.0])
    got = gaussian_blur(x, sig, 5)
    for i in range(len(x)):
        ref = TF.gaussian_blur(x[i], [5, 5], [float(sig[i])] * 2)
        assert torch.allclose(got[i], ref, atol=1e-5)
    assert blur_kernel_size(32) == 3 and blur_kernel_size(96) == 9 and blur_kernel_size(28) == 3


def test_full_crop_is_identity_and_flip_mirrors():
    x = _rgb(b=2, h=8, w=8)
    full = torch.zeros(2), torch.zeros(2), torch.full((2,), 8.0), torch.full((2,), 8.0)
    same = resized_crop_flip(x, *full, torch.tensor([False, False]))
    assert torch.allclose(same, x, atol=1e-5)
    flipped = resized_crop_flip(x, *full, torch.tensor([True, False]))
    assert torch.allclose(flipped[0], torch.flip(x[0], dims=[-1]), atol=1e-5)
    assert torch.allclose(flipped[1], x[1], atol=1e-5)


def test_crop_boxes_follow_random_resized_crop():
    g = torch.Generator().manual_seed(0)
    top, left, ch, cw = _sample_crops(4000, (0.08, 1.0), (3 / 4, 4 / 3), 32, 32, g)
    area = ch * cw / (32 * 32)
    assert (top >= 0).all() and (left >= 0).all() and (top + ch <= 32).all() and (left + cw <= 32).all()
    assert area.min() > 0.05 and area.max() <= 1.0
    ratio = cw / ch
    assert ratio.min() > 0.5 and ratio.max() < 2.0  # rounding to whole pixels widens the 3/4..4/3 range
    assert 0.45 < float(area.mean()) < 0.6  # U(0.08, 1) area, minus rejections: mean near 0.54


def test_simclr_views_shapes_determinism_and_independence():
    x = (torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    v = SimCLRViews(SimCLRViewParams(), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    a1, a2 = v.pair(x, torch.Generator().manual_seed(7))
    b1, b2 = v.pair(x, torch.Generator().manual_seed(7))
    assert a1.shape == x.shape and a1.dtype == torch.float32
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.allclose(a1, a2)
    grey = SimCLRViews(SimCLRViewParams(), mean=(0.5,), std=(0.5,))
    g1, _ = grey.pair(x[:, :1], torch.Generator().manual_seed(0))
    assert g1.shape == (6, 1, 16, 16) and torch.isfinite(g1).all()


def test_view_params_validated():
    with pytest.raises(ConfigError, match="crop_scale"):
        SimCLRViewParams(crop_scale=(0.5, 0.2))
    with pytest.raises(ConfigError, match="grey_p"):
        SimCLRViewParams(grey_p=1.5)
    with pytest.raises(ConfigError, match="length"):
        SequenceParams(length=1)


def _centre_of_mass(img):
    h, w = img.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    m = img.sum()
    return float((img * xs).sum() / m), float((img * ys).sum() / m)


def test_digit_sequences_move_one_factor_at_a_time():
    img = torch.zeros(1, 1, 28, 28)
    img[0, 0, 10:18, 12:16] = 1.0  # a bar in the middle
    x = img.repeat(3, 1, 1, 1)
    p = SequenceParams(length=4, max_shift=0.1, max_log_scale=0.1, max_rotation_deg=20.0)
    frames, factor = digit_sequences(x, p, torch.Generator().manual_seed(0), factor=torch.tensor([0, 1, 2]))
    assert frames.shape == (3, 4, 1, 28, 28)
    assert torch.equal(factor, torch.tensor([0, 1, 2]))
    for s in range(3):
        assert torch.allclose(frames[s, 0], img[0], atol=1e-5)  # frame 0 is the image
    # position: the centre of mass moves by a constant step; mass (area) is preserved
    com = [_centre_of_mass(frames[0, t, 0]) for t in range(4)]
    steps = [(com[t + 1][0] - com[t][0], com[t + 1][1] - com[t][1]) for t in range(3)]
    assert all(math.isclose(s[0], steps[0][0], abs_tol=0.1) and math.isclose(s[1], steps[0][1], abs_tol=0.1)
               for s in steps)
    assert math.hypot(*steps[0]) > 0.1
    # scale: mass changes monotonically, the centre stays
    mass = [float(frames[1, t].sum()) for t in range(4)]
    assert all(a != pytest.approx(b, rel=1e-3) for a, b in zip(mass, mass[1:]))
    assert (all(a < b for a, b in zip(mass, mass[1:])) or all(a > b for a, b in zip(mass, mass[1:])))
    # orientation: the centre stays, mass roughly kept, the frames differ
    c0, c3 = _centre_of_mass(frames[2, 0, 0]), _centre_of_mass(frames[2, 3, 0])
    assert abs(c0[0] - c3[0]) < 0.3 and abs(c0[1] - c3[1]) < 0.3
    assert not torch.allclose(frames[2, 3], frames[2, 0], atol=1e-2)


def test_sequence_views_pair_consecutive_frames():
    x = (torch.rand(5, 1, 12, 12, generator=torch.Generator().manual_seed(5)) * 255).to(torch.uint8)
    v = SequenceViews(SequenceParams(length=3), mean=(0.0,), std=(1.0,))
    a, b = v.pair(x, torch.Generator().manual_seed(1))
    assert a.shape == b.shape == (10, 1, 12, 12)
    frames, _ = digit_sequences(x, SequenceParams(length=3), torch.Generator().manual_seed(1))
    assert torch.allclose(a[1], frames[0, 1]) and torch.allclose(b[0], frames[0, 1])
