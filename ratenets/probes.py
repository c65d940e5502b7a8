"""Linear readouts ("probes") of frozen features: the evaluation shared by the self-supervised rules.

A probe is softmax (multinomial logistic) regression trained with Adam on standardised features, as the
linear evaluation of Halvagal & Zenke (2023), Methods ("Linear readout"; the official ``eval.py`` trains a
logistic regression with Adam, lr 1e-3, 20 epochs, batch 512) and of Illing, Ventura, Bellec & Gerstner
(2021) for CLAPP. Features are standardised with the training set's mean and standard deviation, so one
learning rate suits layers of very different scales.

Everything is deterministic for a given ``seed`` on CPU: zero-initialised weights (the problem is convex,
so the start does not matter) and a private :class:`torch.Generator` for the mini-batch order.

Typical use::

    train = {"conv1": f1_train, "conv2": f2_train}   # (n_train, units) per layer
    test = {"conv1": f1_test, "conv2": f2_test}      # (n_test, units)
    acc = probe_layers(train, y_train, test, y_test, epochs=20, seed=0)   # {"conv1": 0.93, ...}
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from bridge.errors import ConfigError

#: Halvagal & Zenke (2023), official eval.py: Adam lr 1e-3, 20 epochs, batch 512
DEFAULT_EPOCHS = 20
DEFAULT_LR = 1e-3
DEFAULT_BATCH_SIZE = 512


def standardise(train: torch.Tensor, test: torch.Tensor, eps: float = 1e-6
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Z-score both feature sets with the training set's per-unit mean and standard deviation.

    Parameters
    ----------
    train : tensor, shape (n_train, units)
    test : tensor, shape (n_test, units)
    eps : float
        Added to the standard deviation, so constant (dead) units map to 0 instead of NaN.
    """
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False)
    return (train - mean) / (std + eps), (test - mean) / (std + eps)


def _check(name: str, feats: torch.Tensor, y: torch.Tensor) -> None:
    if feats.ndim != 2:
        raise ConfigError(f"{name} features must be 2-D (sample, unit), got shape {tuple(feats.shape)}")
    if y.ndim != 1 or len(y) != len(feats):
        raise ConfigError(f"{name} labels must be 1-D with one label per sample: {len(feats)} samples, "
                          f"labels of shape {tuple(y.shape)}")
    if len(feats) == 0:
        raise ConfigError(f"{name} set is empty")


def linear_probe(train_feats: torch.Tensor, train_y: torch.Tensor, test_feats: torch.Tensor,
                 test_y: torch.Tensor, *, epochs: int = DEFAULT_EPOCHS, lr: float = DEFAULT_LR,
                 batch_size: int = DEFAULT_BATCH_SIZE, weight_decay: float = 0.0, seed: int = 0,
                 n_classes: int | None = None, device: torch.device | str | None = None,
                 standardize: bool = True, shuffle: bool = True, init: str = "zeros") -> float:
    """Test accuracy of a softmax-regression readout trained on frozen features.

    Parameters
    ----------
    train_feats, test_feats : tensor, shape (n, units)
        Features (any float dtype; computed in float32). Standardised here with the training statistics.
    train_y, test_y : tensor of int, shape (n,)
        Class labels in ``0 .. n_classes - 1``.
    epochs, lr, batch_size : int, float, int
        Adam on the mean cross-entropy; defaults from the official LPL ``eval.py``.
    weight_decay : float
        L2 penalty (Adam's ``weight_decay``), 0 by default.
    seed : int
        Seeds the mini-batch order.
    n_classes : int, optional
        Defaults to ``max(label) + 1`` over both sets.
    device : torch.device or str, optional
        Where to train; defaults to the features' device.
    standardize : bool
        Z-score the features with the training statistics (True) or use them raw (False, the official LPL
        ``eval.py``, whose normalisation line is commented out).
    shuffle : bool
        Reshuffle the mini-batches every epoch (True) or keep the data order (False: ``eval.py``'s
        ``DataLoader(..., batch_size=512)`` without ``shuffle``).
    init : {"zeros", "linear"}
        Zero weights, or torch's ``nn.Linear`` default ``U(-1/sqrt(units), 1/sqrt(units))`` for weights and
        bias (pl_bolts' ``LogisticRegression`` in ``eval.py``), drawn from ``seed``.

    Returns
    -------
    float
        Fraction of ``test_feats`` classified correctly, in [0, 1].

    Raises
    ------
    ConfigError
        For mismatched shapes, an empty set or non-positive epochs/lr/batch size.
    """
    _check("training", train_feats, train_y)
    _check("test", test_feats, test_y)
    if train_feats.shape[1] != test_feats.shape[1]:
        raise ConfigError(f"training and test features differ in width: {train_feats.shape[1]} vs "
                          f"{test_feats.shape[1]} units")
    if epochs < 1 or batch_size < 1 or not lr > 0 or weight_decay < 0:
        raise ConfigError(f"probe needs epochs >= 1, batch_size >= 1, lr > 0 and weight_decay >= 0; got "
                          f"epochs={epochs}, batch_size={batch_size}, lr={lr}, weight_decay={weight_decay}")
    if init not in ("zeros", "linear"):
        raise ConfigError(f"probe init must be 'zeros' or 'linear', got {init!r}")
    dev = torch.device(device) if device is not None else train_feats.device
    xtr, xte = train_feats.detach().to(dev, torch.float32), test_feats.detach().to(dev, torch.float32)
    if standardize:
        xtr, xte = standardise(xtr, xte)
    ytr, yte = train_y.to(dev).long(), test_y.to(dev).long()
    k = int(n_classes if n_classes is not None else max(int(ytr.max()), int(yte.max())) + 1)
    gen = torch.Generator().manual_seed(int(seed))
    if init == "zeros":
        w0, b0 = torch.zeros(xtr.shape[1], k), torch.zeros(k)
    else:
        bound = 1.0 / max(xtr.shape[1], 1) ** 0.5
        w0 = (torch.rand(xtr.shape[1], k, generator=gen) * 2 - 1) * bound
        b0 = (torch.rand(k, generator=gen) * 2 - 1) * bound
    w = w0.to(dev).requires_grad_(True)  # (units, classes)
    b = b0.to(dev).requires_grad_(True)
    opt = torch.optim.Adam([w, b], lr=lr, weight_decay=weight_decay)
    n = len(xtr)
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen).to(dev) if shuffle else torch.arange(n, device=dev)
            for i in range(0, n, batch_size):
                idx = order[i:i + batch_size]
                loss = torch.nn.functional.cross_entropy(xtr[idx] @ w + b, ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    with torch.no_grad():
        pred = (xte @ w + b).argmax(1)
        return float((pred == yte).float().mean())


def probe_layers(train: Mapping[str, torch.Tensor], train_y: torch.Tensor, test: Mapping[str, torch.Tensor],
                 test_y: torch.Tensor, *, layers: list[str] | tuple[str, ...] | None = None,
                 **kwargs) -> dict[str, float]:
    """:func:`linear_probe` on every layer of a dict of features; ``{layer: test accuracy}``.

    Parameters
    ----------
    train, test : mapping of str to tensor (n, units)
        Per-layer features of the same samples, keyed by layer name.
    layers : sequence of str, optional
        Probe only these layers (in this order); default: every key of ``train``.
    **kwargs
        Passed to :func:`linear_probe` (epochs, lr, batch_size, weight_decay, seed, device, n_classes).

    Raises
    ------
    ConfigError
        For a requested layer that is not in both dicts (the message lists the layers that exist).
    """
    names = list(layers) if layers is not None else list(train)
    for name in names:
        if name not in train or name not in test:
            raise ConfigError(f"no layer {name!r} to probe (layers: {', '.join(train)})")
    return {name: linear_probe(train[name], train_y, test[name], test_y, **kwargs) for name in names}


@torch.no_grad()
def collect_features(fn: Callable[[torch.Tensor], Mapping[str, torch.Tensor]], x: torch.Tensor, *,
                     batch_size: int = 1000, device: torch.device | str | None = None,
                     transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Run ``fn`` over ``x`` in batches and concatenate its per-layer outputs on the CPU.

    Parameters
    ----------
    fn : callable
        Maps an input batch to ``{layer: (batch, units)}`` (e.g. an encoder's pooled outputs).
    x : tensor, shape (n, ...)
        Inputs, on any device; each batch is moved to ``device`` (and passed through ``transform``).
    batch_size : int
    device : torch.device or str, optional
        Where ``fn`` runs; default: ``x``'s device.
    transform : callable, optional
        Applied to each batch after the move (e.g. uint8 -> float and normalisation).

    Returns
    -------
    dict of str to tensor, shape (n, units)
        float32 features on the CPU.
    """
    dev = torch.device(device) if device is not None else x.device
    parts: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].to(dev)
        if transform is not None:
            xb = transform(xb)
        for name, f in fn(xb).items():
            parts.setdefault(name, []).append(f.detach().float().cpu())
    return {name: torch.cat(p) for name, p in parts.items()}
