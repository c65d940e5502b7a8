"""Spiking units for the torch encoders: snntorch leaky integrate-and-fire neurons behind one config switch.

``neuron="rate"`` (the default) leaves every encoder as it is. ``neuron="lif"`` (``snntorch.Leaky``) or
``neuron="synaptic"`` (``snntorch.Synaptic``) replaces the ReLU of every block by a spiking neuron run for
``timesteps`` steps; the block's convolution (or linear map) and its max-pooling stay the same modules, so a
spiking net built from the same seed starts from the same weights as its rate twin.

Time is the leading dimension: a block maps a spike train ``(T, B, ...)`` to a spike train ``(T, B, ...)``.

* **Input encoding** (:func:`encode`): ``direct`` feeds the (normalised) input as a constant current at every
  step (the first layer's convolution is computed once); ``rate`` draws Bernoulli ("Poisson") spikes with
  ``snntorch.spikegen.rate`` (probability ``clip(gain * x, 0, 1)``, snntorch's clipping); ``latency`` emits one
  spike per input with ``snntorch.spikegen.latency`` (linear code normalised to the ``T`` steps, inputs below
  snntorch's threshold 0.01 silent). spikegen draws from torch's global generator, which the engine seeds
  per run and stores in its checkpoints.
* **Neuron step** (snntorch 1.0, ``_neurons/leaky.py``; ``reset_delay=True``, snntorch's default): with
  ``S[t] = H(U[t] - U_thr)``,
  ``U[t] = beta U[t-1] + I[t] - S[t-1] U_thr`` (``reset_mechanism="subtract"``),
  ``U[t] = beta (1 - S[t-1]) U[t-1] + I[t]`` (``"zero"``), ``U[t] = beta U[t-1] + I[t]`` (``"none"``);
  ``Synaptic`` adds ``I_syn[t] = alpha I_syn[t-1] + I[t]`` and integrates ``I_syn`` instead of ``I``; its
  zero reset is ``U[t] = (1 - S[t-1]) (beta U[t-1] + I_syn[t])`` (the new drive is dropped too, ``I_syn``
  kept), whereas ``Leaky``'s code keeps ``I[t]`` although its docstring writes the ``Synaptic`` form; we
  follow the code (tested in ``tests/test_deep_spiking.py``). ``U[0] = 0``: every sequence starts from rest (the state is passed
  explicitly, never kept on the module between batches). The backward pass replaces ``dS/dU`` by snntorch's
  surrogate (``spike_grad``), chosen by name.
* **Output to the rule** (:func:`readout`, ``spike_output``): ``count`` (spikes over the ``T`` steps),
  ``rate`` (count / T, spikes per step) or ``filtered`` (the exponentially filtered spike train at the last
  step, ``r[T] / (1 - beta^T)`` with ``r[t] = beta r[t-1] + (1 - beta) S[t]``: a rate that weights recent
  spikes more). The next block receives the spike train itself.

Layer-local rules run one block at a time on the detached spike train of the block below, so the
backpropagation through time of the surrogate gradient stays inside one layer; end-to-end modes backpropagate
through all layers and all steps (BPTT). Every block counts its spikes (per channel), which gives the
per-layer firing rates and the silence check (:func:`epoch_firing_rates`).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import xarray as xr
from torch import nn

from bridge.errors import ConfigError, DivergenceError, unknown_choice
from ratenets import distributed

NEURONS = ("rate", "lif", "synaptic")
ENCODINGS = ("direct", "rate", "latency")
RESETS = ("subtract", "zero", "none")
SPIKE_OUTPUTS = ("count", "rate", "filtered")
#: snntorch.surrogate factories by name, with the name of their shape parameter and snntorch's default for it
SURROGATES: dict[str, tuple[str, str | None, float | None]] = {
    "atan": ("atan", "alpha", 2.0),
    "fast_sigmoid": ("fast_sigmoid", "slope", 25.0),
    "sigmoid": ("sigmoid", "slope", 25.0),
    "spike_rate_escape": ("spike_rate_escape", "slope", 25.0),
    "triangular": ("triangular", "threshold", 1.0),
    "straight_through_estimator": ("straight_through_estimator", None, None),
    "heaviside": ("heaviside", None, None),
}
#: the config fields this module adds to a rule's config
SPIKING_FIELDS = ("neuron", "timesteps", "encoding", "encoding_gain", "beta", "alpha", "threshold",
                  "reset_mechanism", "surrogate", "surrogate_slope", "spike_output")


class SilentLayerError(DivergenceError):
    """A spiking layer emitted no spike during a whole training epoch (nothing left to learn from)."""


@dataclass(frozen=True, kw_only=True)
class SpikingFields:
    """Neuron fields shared by the configs of the rules that can train spiking encoders.

    Defaults are snntorch 1.0's where it has one (cited); snntorch's ``Leaky`` has no default ``beta``.
    """

    neuron: Literal["rate", "lif", "synaptic"] = "rate"   # rate: ReLU units (unchanged); lif: snn.Leaky; synaptic: snn.Synaptic
    timesteps: int = 25                  # snntorch tutorials 5-7: num_steps = 25
    encoding: Literal["direct", "rate", "latency"] = "direct"  # direct current, spikegen.rate, spikegen.latency
    encoding_gain: float = 1.0           # spikegen.rate(gain=1) default; also scales the latency code's input
    beta: float = 0.95                   # membrane decay per step, exp(-1/tau_mem): 0.95 ~ tau 19.5 steps (tutorials 5-7)
    alpha: float = 0.9                   # synaptic current decay (Synaptic only; snn.Synaptic docstring example)
    threshold: float = 1.0               # snn.Leaky(threshold=1.0) default
    reset_mechanism: Literal["subtract", "zero", "none"] = "subtract"  # snn.Leaky default "subtract"
    surrogate: Literal["atan", "fast_sigmoid", "sigmoid", "spike_rate_escape", "triangular",
                       "straight_through_estimator", "heaviside"] = "atan"  # snn.Leaky default: surrogate.atan()
    surrogate_slope: float = 0.0         # 0: snntorch's default shape (atan alpha 2, sigmoids slope 25, triangular 1)
    spike_output: Literal["count", "rate", "filtered"] = "rate"   # what the rule sees (ours: rate, T-independent scale)

    def __post_init__(self) -> None:
        check_neuron_fields(self)

    @property
    def spiking(self) -> bool:
        return self.neuron != "rate"


def check_neuron_fields(cfg: Any) -> None:
    """ConfigError naming the field for any invalid neuron setting of ``cfg`` (a :class:`SpikingFields`)."""
    for name, choices in (("neuron", NEURONS), ("encoding", ENCODINGS), ("reset_mechanism", RESETS),
                          ("surrogate", tuple(SURROGATES)), ("spike_output", SPIKE_OUTPUTS)):
        if getattr(cfg, name) not in choices:
            raise unknown_choice(name, str(getattr(cfg, name)), choices)
    if isinstance(cfg.timesteps, bool) or not isinstance(cfg.timesteps, int) or cfg.timesteps < 1:
        raise ConfigError(f"timesteps must be an integer >= 1 (steps each input is presented), got {cfg.timesteps!r}")
    if not (cfg.threshold > 0 and math.isfinite(cfg.threshold)):
        raise ConfigError(f"threshold must be a finite number > 0 (a spike needs U > threshold), got {cfg.threshold!r}")
    for name in ("beta", "alpha"):
        v = getattr(cfg, name)
        if not 0 <= v <= 1:
            raise ConfigError(f"{name} must be a decay factor in [0, 1] (snntorch clips it there), got {v!r}")
    if not (cfg.surrogate_slope >= 0 and math.isfinite(cfg.surrogate_slope)):
        raise ConfigError(f"surrogate_slope must be >= 0 (0: snntorch's default), got {cfg.surrogate_slope!r}")
    if not (cfg.encoding_gain > 0 and math.isfinite(cfg.encoding_gain)):
        raise ConfigError(f"encoding_gain must be a finite number > 0, got {cfg.encoding_gain!r}")


def check_rule_supports(rule: str, cfg: Any, overrides: list[str] | tuple[str, ...]) -> None:
    """ConfigError when ``--set`` gives a neuron field to a rule whose config has none (rate units only)."""
    if isinstance(cfg, SpikingFields):
        return
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key in SPIKING_FIELDS and not hasattr(cfg, key):  # e.g. EP's nudge `beta` is not snntorch's beta
            raise ConfigError(f"rule {rule!r} trains rate units only, so it cannot use {item!r}; spiking "
                              "encoders (neuron=lif|synaptic) are trained by lpl, clapp, clapp-s and hinge-cpc")


# ----------------------------------------------------------------------------------------------------------------
# snntorch parts by name

def make_surrogate(name: str, slope: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """snntorch's surrogate ``name`` (``snntorch.surrogate.<name>``), shape parameter ``slope`` (0: its default)."""
    if name not in SURROGATES:
        raise unknown_choice("surrogate", name, SURROGATES)
    from snntorch import surrogate

    factory, param, _ = SURROGATES[name]
    fn = getattr(surrogate, factory)
    return fn(**{param: slope}) if (param is not None and slope > 0) else fn()


def make_neuron(cfg: SpikingFields) -> nn.Module:
    """A fresh ``snntorch.Leaky`` or ``snntorch.Synaptic`` with the config's constants.

    The module is removed from snntorch's class-level ``SpikingNeuron.instances`` list, which only serves
    ``init_hidden=True`` (not used here) and would otherwise keep every neuron ever built alive.
    """
    import snntorch as snn

    kw = dict(beta=cfg.beta, threshold=cfg.threshold, spike_grad=make_surrogate(cfg.surrogate, cfg.surrogate_slope),
              reset_mechanism=cfg.reset_mechanism)
    if cfg.neuron == "lif":
        neuron = snn.Leaky(**kw)
    elif cfg.neuron == "synaptic":
        neuron = snn.Synaptic(alpha=cfg.alpha, **kw)
    else:
        raise unknown_choice("spiking neuron", cfg.neuron, NEURONS[1:])
    instances = snn.SpikingNeuron.instances
    for i in range(len(instances) - 1, -1, -1):
        if instances[i] is neuron:
            del instances[i]
    return neuron


# ----------------------------------------------------------------------------------------------------------------
# input encoding and readout

def encode(x: torch.Tensor, cfg: SpikingFields) -> torch.Tensor:
    """Encode a static input ``(B, ...)`` as ``(T, B, ...)`` over ``cfg.timesteps`` steps.

    ``direct`` returns an expanded view (stride 0 along time), which :class:`SpikingBlock` recognises and
    convolves once.
    """
    T = cfg.timesteps
    if cfg.encoding == "direct":
        return x.unsqueeze(0).expand(T, *x.shape)
    from snntorch import spikegen

    if cfg.encoding == "rate":
        return spikegen.rate(x, num_steps=T, gain=cfg.encoding_gain).to(x.dtype)
    # latency: one spike per input, the brighter the earlier (linear code over the T steps); inputs below
    # snntorch's threshold (0.01) do not fire (clip=True)
    p = (x * cfg.encoding_gain).clamp(0.0, 1.0)
    if T == 1:
        return (p >= 0.01).to(x.dtype).unsqueeze(0)
    return spikegen.latency(p, num_steps=T, normalize=True, linear=True, clip=True).to(x.dtype)


def readout(spikes: torch.Tensor, cfg: SpikingFields) -> torch.Tensor:
    """A layer's output to the rule, ``(T, B, ...)`` -> ``(B, ...)``: spike count, rate or filtered rate."""
    if cfg.spike_output == "count":
        return spikes.sum(0)
    if cfg.spike_output == "rate":
        return spikes.mean(0)
    if cfg.beta >= 1.0:
        return spikes.mean(0)  # no decay: the filter is the plain average
    w = readout_weights(spikes.shape[0], cfg, spikes.dtype, spikes.device)
    return torch.tensordot(w, spikes, dims=([0], [0]))


def readout_weights(T: int, cfg: SpikingFields, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Weights over the ``T`` steps of the ``filtered`` readout, ``(1 - beta) beta^(T-1-t) / (1 - beta^T)``
    (summing to 1; the plain average when ``beta >= 1``)."""
    if cfg.beta >= 1.0:
        return torch.full((T,), 1.0 / T, dtype=dtype, device=device)
    w = cfg.beta ** torch.arange(T - 1, -1, -1, dtype=dtype, device=device)  # beta^(T-1-t)
    return w * ((1 - cfg.beta) / (1 - cfg.beta ** T))  # r[T] / (1 - beta^T): weights sum to 1


# ----------------------------------------------------------------------------------------------------------------
# max-pooling of spikes, with a one-byte copy of its input kept for backward

class _SpikeMaxPool(torch.autograd.Function):
    """``max_pool2d(s, 2)`` of a binary spike map whose backward equals ``max_pool2d``'s, bit for bit.

    ``max_pool2d`` keeps its float input (4 bytes per element) and int64 argmax indices (8 bytes per output,
    2 per input element) for backward; over ``T`` steps this is most of a spiking conv block's graph. Spikes are
    0 or 1 (snntorch's Heaviside times ``graded_spikes_factor`` 1), so a ``bool`` copy (1 byte) holds the
    same information: backward rebuilds the float map from it and runs ``max_pool2d``'s own backward on it,
    which recomputes the same argmax (same values, same deterministic kernel) and routes the gradient to it.
    """

    @staticmethod
    def forward(ctx, s: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(s.to(torch.bool))
        ctx.dtype = s.dtype
        return nn.functional.max_pool2d(s, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (b,) = ctx.saved_tensors
        with torch.enable_grad():
            s = b.to(ctx.dtype).requires_grad_(True)
            (g,) = torch.autograd.grad(nn.functional.max_pool2d(s, 2), s, grad)
        return g


def spike_max_pool(s: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling of a spike map (0/1 values), storing one byte per input element for backward."""
    if not s.requires_grad or not torch.is_grad_enabled():
        return nn.functional.max_pool2d(s, 2)
    return _SpikeMaxPool.apply(s)


# ----------------------------------------------------------------------------------------------------------------
# the spiking block

class SpikingBlock(nn.Module):
    """A rate block's synapses (conv or linear) driving spiking neurons over time, then its max-pooling.

    ``(T, B, C_in, H, W)`` (or ``(T, B, ...)`` flattened for a linear block) -> ``(T, B, C_out, H', W')`` spikes.

    Attributes
    ----------
    conv or fc : nn.Module
        The synapses, the same module as in the rate block it was made from.
    pool, pools : bool
        Whether a 2x2 max-pool follows (max of spikes: a spike if any neuron of the window spiked).
    neuron : snntorch.Leaky or snntorch.Synaptic
    """

    def __init__(self, synapse: nn.Module, pool: bool, cfg: SpikingFields, flatten: bool = False) -> None:
        super().__init__()
        if isinstance(synapse, nn.Conv2d):
            self.conv = synapse
        else:
            self.fc = synapse
        self.pool = bool(pool)
        self.pools = self.pool
        self.flatten = flatten
        self.cfg = cfg
        self.neuron = make_neuron(cfg)
        self.reset_counts()

    @property
    def synapse(self) -> nn.Module:
        return self.conv if hasattr(self, "conv") else self.fc

    def _currents(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | list[torch.Tensor]:
        """Per-step synaptic currents of an input train ``(T, B, ...)`` (float, or ``bool`` spikes)."""
        T, B = x.shape[:2]
        if x.dtype == torch.bool:  # a detached spike train from forward_local of the block below
            x = x.to(self.synapse.weight.dtype)
        if self.flatten:
            x = x.flatten(2)  # (T, B, C*H*W)
        if T > 1 and x.stride(0) == 0:  # direct encoding: the same current at every step, computed once
            c0 = self.synapse(x[0])
            return [c0] * T  # gradients accumulate in one buffer
        c = self.synapse(x.reshape(T * B, *x.shape[2:]))  # all steps in one batched call
        return c.reshape(T, B, *c.shape[1:]).unbind(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spike train ``(T, B, C, H', W')`` or ``(T, B, M)``, differentiable (end-to-end BPTT, evaluation)."""
        return self.run(self._currents(x), spike_max_pool if self.pool else None)

    def forward_local(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer-local forward: ``(readout, spikes)``; only the readout carries a graph.

        ``readout`` equals ``readout(self(x), cfg)`` (bitwise for the ``count`` and ``rate`` outputs, whose
        sums of 0/1 spikes are exact; ``filtered`` to rounding), with the same gradient. It is summed step by
        step, so no differentiable ``(T, ...)`` spike train is built; ``spikes`` is the detached train as
        ``bool`` (1 byte per spike slot instead of 4), the input of the next block (see ``_currents``).
        A layer-local rule needs nothing else: no gradient flows back through the output spike train.
        """
        return self.run(self._currents(x), spike_max_pool if self.pool else None, local=True)

    def run(self, cur: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...],
            post: Callable[[torch.Tensor], torch.Tensor] | None = None, local: bool = False):
        """The neuron over time from rest: currents ``(T, B, ...)`` -> spikes ``(T, B, ...)``.

        ``cur`` is a tensor or a sequence of per-step currents; ``post`` (the max-pool) is applied step by
        step, so no full-resolution ``(T, ...)`` tensor is kept for backward or built by it. Spikes are counted
        before ``post``. ``local=True``: returns ``(readout, detached bool spikes)`` (:meth:`forward_local`).
        """
        steps = cur.unbind(0) if isinstance(cur, torch.Tensor) else cur  # one node; cur[t] would allocate T grads
        T = len(steps)
        zero = torch.zeros_like(steps[0])
        out: list[torch.Tensor] = []
        syn, mem = zero, zero
        count = None
        acc, buf, weights = None, None, None
        if local and self.cfg.spike_output == "filtered":
            weights = readout_weights(T, self.cfg, steps[0].dtype, steps[0].device)
        for t, c in enumerate(steps):
            if self.cfg.neuron == "synaptic":
                spk, syn, mem = self.neuron(c, syn, mem)
            else:
                spk, mem = self.neuron(c, mem)
            spk = spk.to(c.dtype)
            with torch.no_grad():
                n = spk.sum(dim=[d for d in range(spk.ndim) if d != 1])  # (C,) spikes per unit
                count = n if count is None else count + n
            o = spk if post is None else post(spk)
            if not local:
                out.append(o)
                continue
            if buf is None:
                buf = torch.empty((T, *o.shape), dtype=torch.bool, device=o.device)
            buf[t] = o.detach()  # spikes are 0 or 1: bool is exact
            term = o if weights is None else o * weights[t]
            acc = term if acc is None else acc + term
        self._count(count, T * (steps[0].numel() // steps[0].shape[1]))
        if not local:
            return torch.stack(out)
        assert acc is not None and buf is not None
        return (acc / T if self.cfg.spike_output == "rate" else acc), buf

    def step_response(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Response to one step (``T = 1``) of pre-activation ``a`` from rest, and its surrogate derivative.

        At ``T = 1`` the neuron is ``S = H(a - U_thr)`` with ``dS/da`` = the surrogate's derivative at
        ``a - U_thr``: the post factor of the explicit three-factor rule
        (:func:`ratenets.rules.clapp.three_factor_grads`). Both come from snntorch's own neuron and
        surrogate (the derivative by autograd of the one-step call).
        """
        with torch.enable_grad():
            a_ = a.detach().clone().requires_grad_(True)
            s = self.run(a_.unsqueeze(0))[0]
            (d,) = torch.autograd.grad(s.sum(), a_)
        return s.detach(), d.detach()

    # --- spike counting (per channel, separately for training and evaluation) ----------------------------
    def reset_counts(self) -> None:
        self.counts: dict[bool, list[Any]] = {True: [None, 0], False: [None, 0]}

    @torch.no_grad()
    def _count(self, per_unit: torch.Tensor, neuron_steps: int) -> None:
        per_unit = per_unit.double().cpu()  # (C,)
        slot = self.counts[self.training]
        slot[0] = per_unit if slot[0] is None else slot[0] + per_unit
        slot[1] += neuron_steps  # neuron-steps per unit


def spiking_block(block: nn.Module, cfg: SpikingFields) -> SpikingBlock:
    """The spiking version of a rate block (conv 3x3 -> ReLU -> [pool], or linear -> ReLU), sharing its synapses."""
    if hasattr(block, "conv"):
        pool = block.pool if isinstance(block.pool, bool) else bool(getattr(block, "pools", False))
        return SpikingBlock(block.conv, pool, cfg)
    if hasattr(block, "fc"):
        return SpikingBlock(block.fc, False, cfg, flatten=True)
    raise ConfigError(f"block {type(block).__name__} has no spiking version (conv and linear blocks do)")


class TimeSteps:
    """Mixin of the encoders: ``encode`` and ``readout`` are identities for rate units, time-aware for spikes."""

    neurons: SpikingFields | None = None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The first block's input: ``x`` itself (rate units) or its encoding over time ``(T, B, ...)``."""
        return x if self.neurons is None else encode(x, self.neurons)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """What the rule sees of a block output: ``h`` itself, or the readout over time of a spike train."""
        return h if self.neurons is None else readout(h, self.neurons)

    def local_forward(self, block: nn.Module, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One block of a layer-local rule on the detached input ``h``: ``(what the rule sees, next input)``.

        Rate units: the block output and its detached copy (same storage). Spiking blocks:
        :meth:`SpikingBlock.forward_local` (the readout with this block's graph only, and the detached spike
        train as ``bool``), so no differentiable spike train over time is kept.
        """
        if isinstance(block, SpikingBlock):
            return block.forward_local(h.detach())
        out = block(h.detach())
        return out, out.detach()


def with_neurons(encoder: nn.Module, cfg: Any) -> nn.Module:
    """Make ``encoder``'s blocks spiking in place when ``cfg.neuron`` is not ``"rate"``; return the encoder.

    The synapses are kept (same initial weights as the rate twin); the neuron buffers follow ``encoder.to``.
    """
    if getattr(cfg, "neuron", "rate") == "rate":
        return encoder
    dev = next(encoder.parameters()).device
    for i, block in enumerate(encoder.blocks):
        encoder.blocks[i] = spiking_block(block, cfg)
    encoder.neurons = cfg
    return encoder.to(dev)


def spiking_blocks(encoder: nn.Module) -> list[tuple[str, SpikingBlock]]:
    return [(n, b) for n, b in zip(encoder.layer_names, encoder.blocks) if isinstance(b, SpikingBlock)]


def reset_firing_counts(encoder: nn.Module) -> None:
    """Forget the spike counts of every block (training and evaluation)."""
    for _, b in spiking_blocks(encoder):
        b.reset_counts()


def firing_stats(encoder: nn.Module, training: bool) -> dict[str, np.ndarray]:
    """Per-layer spike statistics counted since the last reset, in training or evaluation mode.

    Returns
    -------
    dict of arrays, shape (layer,)
        ``rate``: spikes per neuron per time step (before pooling); ``silent``: fraction of units (channels of
        a conv layer, neurons of a dense one) that never spiked; ``spikes``: total spike count.
    """
    rate, silent, total = [], [], []
    for _, b in spiking_blocks(encoder):
        per_unit, steps = b.counts[training]
        if per_unit is None or steps == 0:
            rate.append(np.nan), silent.append(np.nan), total.append(0.0)
            continue
        s = per_unit.numpy()
        rate.append(float(s.sum() / (steps * len(s))))
        silent.append(float((s == 0).mean()))
        total.append(float(s.sum()))
    return {"rate": np.array(rate), "silent": np.array(silent), "spikes": np.array(total)}


def _layer_da(values: np.ndarray, names: list[str], long_name: str, units: str) -> xr.DataArray:
    return xr.DataArray(values, dims=("layer",), coords={"layer": names},
                        attrs={"long_name": long_name, "units": units})


def sum_training_counts(encoder: nn.Module, device: torch.device) -> None:
    """Under torchrun: sum every block's training spike counts over the ranks (each counted its own rows),
    so :func:`epoch_firing_rates` reports the whole batch's firing; nothing in one process."""
    if not distributed.active():
        return
    for _, b in spiking_blocks(encoder):
        per_unit, steps = b.counts[True]
        if per_unit is not None:
            both = distributed.all_sum(torch.cat([per_unit, per_unit.new_tensor([float(steps)])]).to(device)).cpu()
            b.counts[True] = [both[:-1], int(round(float(both[-1])))]


def check_data_parallel(cfg: Any, rule: str) -> None:
    """Under torchrun: refuse the Poisson input code, whose spikes each rank would draw for its own rows only."""
    if distributed.active() and getattr(cfg, "neuron", "rate") != "rate" and cfg.encoding == "rate":
        raise ConfigError(f"{rule} with encoding 'rate' does not train data-parallel under torchrun: each rank "
                          "would draw the Poisson spikes of its own rows from the global random stream, not those "
                          "of one process; use encoding 'direct' or 'latency', or run it in one process")


def silence_advice(cfg: SpikingFields, layer: int) -> str:
    """What to change when layer ``layer`` is silent, naming the settings in force (one sentence)."""
    tips = [f"lower threshold (now {cfg.threshold:g}; snntorch's default 1)",
            f"raise timesteps (now {cfg.timesteps})"]
    if cfg.reset_mechanism != "subtract":
        tips.append(f"use reset_mechanism=subtract (now {cfg.reset_mechanism})")
    if layer == 0 and cfg.encoding != "direct":
        tips.append(f"raise encoding_gain (now {cfg.encoding_gain:g}, encoding {cfg.encoding}) or use encoding=direct")
    elif layer > 0:
        tips.append("check that the layer below fires (train_firing_rate of the finished epochs)")
    tips.append(f"or use a surrogate with a wider support (now {cfg.surrogate})")
    return "Try: " + "; ".join(tips)


def epoch_firing_rates(encoder: nn.Module, epoch: int) -> dict[str, xr.DataArray]:
    """Training firing rates of the epoch just run (``{}`` for rate units); resets the training counts.

    Raises
    ------
    SilentLayerError
        When a layer emitted no spike in the whole epoch, naming the layer and the epoch (the engine has
        already written the epochs finished before).
    """
    blocks = spiking_blocks(encoder)
    if not blocks:
        return {}
    names = [n for n, _ in blocks]
    st = firing_stats(encoder, training=True)
    for b in (b for _, b in blocks):
        b.counts[True] = [None, 0]
    cfg = getattr(encoder, "neurons", None)
    for k, (name, n) in enumerate(zip(names, st["spikes"])):
        if n == 0:
            raise SilentLayerError(f"spiking layer {name} emitted no spike in training epoch {epoch}: it is silent "
                                   "and cannot learn; stopped (the finished epochs are kept). "
                                   + (silence_advice(cfg, k) if cfg is not None else ""))
    return {"train_firing_rate": _layer_da(st["rate"], names, "mean spikes per neuron per time step during the "
                                           "training epoch", "1")}


def eval_firing_rates(encoder: nn.Module) -> dict[str, xr.DataArray]:
    """Firing rates and silent units counted in evaluation mode since the last reset (``{}`` for rate units)."""
    blocks = spiking_blocks(encoder)
    if not blocks:
        return {}
    names = [n for n, _ in blocks]
    st = firing_stats(encoder, training=False)
    return {
        "firing_rate": _layer_da(st["rate"], names, "mean spikes per neuron per time step on the test images", "1"),
        "firing_rate_silent_fraction": _layer_da(st["silent"], names, "fraction of units (channels) with no spike "
                                                 "on any test image", "1"),
    }
