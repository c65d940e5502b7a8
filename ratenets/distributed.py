"""Data-parallel training across processes (``torchrun``): the few helpers the engine and the rules call.

Launched by ``torchrun --nproc-per-node N -m bridge.cli train RULE ...`` (which sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address), :func:`setup` joins the process group (gloo on
CPU, NCCL on CUDA). The scheme keeps the single-process run's semantics exactly:

* every rank draws the **same** data order (the rule's seeded generators are identical on every rank) and
  takes its contiguous slice of each global batch (:func:`local_batch`), so the global batch is the
  single-process batch;
* after a rank's backward pass, :func:`average_gradients` sums ``n_rank * grad_rank`` over the ranks in
  one all-reduce and divides by the global batch size: the gradient of the global batch's mean loss;
  every rank then takes the same optimiser step and the weights stay identical without broadcasts;
* only rank 0 writes results files and checkpoints (:func:`main_only`); every rank reads the checkpoint
  on ``--resume``.

A rule opts in with the class attribute ``data_parallel = True`` once its update follows this scheme (a
rule whose loss uses statistics of the whole batch must also gather them with :func:`gather_batch` and sum
the gradients with :func:`sum_gradients`); :func:`setup` refuses the others in one line, with the rule's
``data_parallel_refusal`` (why it cannot) where it has one. Outside torchrun every helper is a no-op.
"""
from __future__ import annotations

import atexit
import functools
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import torch

from bridge.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def _dist():
    import torch.distributed as dist

    return dist


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    dist = _dist()
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return _dist().get_world_size() if active() else 1


def rank() -> int:
    return _dist().get_rank() if active() else 0


def is_main() -> bool:
    """True on rank 0 (and in every single-process run)."""
    return rank() == 0


def requested() -> int:
    """The world size torchrun asked for (``WORLD_SIZE``), 1 outside torchrun."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def supports(rule_cls: type) -> bool:
    """Whether a rule class itself (not a base class) declares ``data_parallel = True``: a subclass that
    changes the update must opt in on its own."""
    return bool(vars(rule_cls).get("data_parallel", False))


def setup(rule_cls: type, device: torch.device) -> torch.device:
    """Join torchrun's process group if one is asked for; return this rank's device.

    Raises
    ------
    ConfigError
        Under torchrun, for a rule that does not support data-parallel training.
    """
    if requested() <= 1:
        return device
    if not supports(rule_cls):
        from ratenets.rules import RULES, get_rule

        ok = [n for n in RULES if supports(get_rule(n))]
        why = getattr(rule_cls, "data_parallel_refusal", "")
        raise ConfigError(f"rule {rule_cls.name!r} does not train data-parallel under torchrun"
                          f"{': ' + why if why else ''} (rules that do: {', '.join(ok)}); run it in one process")
    dist = _dist()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_teardown)
    if dist.get_rank() != 0:  # rank 0 reports; the others would repeat it line for line ("wrote FILE")
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    return device


def _teardown() -> None:
    dist = _dist()
    if dist.is_initialized():
        dist.destroy_process_group()


def bounds(n: int, size: int | None = None, r: int | None = None) -> tuple[int, int]:
    """``[start, stop)`` of rank ``r``'s contiguous share of ``n`` items (the first ``n % size`` get one more)."""
    size = world_size() if size is None else size
    r = rank() if r is None else r
    q, extra = divmod(n, size)
    start = r * q + min(r, extra)
    return start, start + q + (1 if r < extra else 0)


def local_batch(idx: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """This rank's slice of the global batch of indices ``idx`` (along ``dim``); all of it in one process."""
    if not active():
        return idx
    a, b = bounds(idx.shape[dim])
    return idx.narrow(dim, a, b - a)


def average_gradients(params: Iterable[torch.Tensor], local_n: int) -> int:
    """Turn each parameter's ``.grad`` (of this rank's mean loss over ``local_n`` samples) into the gradient of
    the global batch's mean loss, in one all-reduce. Returns the global batch size."""
    if not active():
        return local_n
    params = list(params)
    grads = [torch.zeros_like(p) if (p.grad is None or local_n == 0) else p.grad * local_n for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads] +
                     [torch.tensor([float(local_n)], dtype=grads[0].dtype, device=grads[0].device)])
    _dist().all_reduce(flat)
    total = int(round(float(flat[-1])))
    off = 0
    for p, g in zip(params, grads):
        k = g.numel()
        p.grad = (flat[off:off + k] / max(total, 1)).view_as(g)
        off += k
    return total


def all_sum_many(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The sum over the ranks of each tensor, in one all-reduce (the tensors themselves in one process)."""
    if not active() or not tensors:
        return tensors
    flat = torch.cat([t.reshape(-1) for t in tensors])
    _dist().all_reduce(flat)
    out, off = [], 0
    for t in tensors:
        out.append(flat[off:off + t.numel()].view_as(t))
        off += t.numel()
    return out


def sum_gradients(params: Iterable[torch.Tensor]) -> None:
    """Sum each parameter's ``.grad`` over the ranks in one all-reduce (nothing in one process).

    For a loss computed identically on every rank from :func:`gather_batch`-ed rows: each rank's backward
    gives the gradient through its own rows only, and the sum over the ranks is the whole gradient. A
    parameter whose ``.grad`` is ``None`` is skipped (it is ``None`` on every rank: the ranks run the same code).
    """
    if not active():
        return
    params = [p for p in params if p.grad is not None]
    for p, g in zip(params, all_sum_many([p.grad for p in params])):
        p.grad.copy_(g)


def all_true(flag: bool) -> bool:
    """True when ``flag`` holds on every rank (``flag`` itself in one process): a branch all ranks take."""
    if not active():
        return flag
    t = torch.tensor([0.0 if flag else 1.0])
    _dist().all_reduce(t)
    return float(t) == 0.0


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of ``t`` over the ranks (``t`` itself in one process)."""
    if not active():
        return t
    t = t.clone()
    _dist().all_reduce(t)
    return t


def gather_batch(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Concatenate every rank's ``x`` along its batch dimension ``dim``, in rank order, for losses that need
    statistics of the whole batch (ranks may hold unequal shares).

    Every rank then computes the same loss on the gathered batch; the backward pass gives this rank the
    gradient of that one loss with respect to its own rows (the all-gather's backward sums the ranks'
    identical copies, which :class:`_ScaleGrad` divides out). Sum the parameter gradients of such a loss
    over the ranks with :func:`sum_gradients` (those of parameters applied before the gather only).
    """
    if not active():
        return x
    size = world_size()
    x = _ScaleGrad.apply(x, 1.0 / size)
    n = torch.tensor([x.shape[dim]], device=x.device)
    counts = [torch.zeros_like(n) for _ in range(size)]
    _dist().all_gather(counts, n)
    counts = [int(c) for c in counts]
    m = max(counts)
    if x.shape[dim] < m:
        pad = list(x.shape)
        pad[dim] = m - x.shape[dim]
        x = torch.cat([x, x.new_zeros(pad)], dim)
    parts = _AllGather.apply(x.contiguous())
    return torch.cat([p.narrow(dim, 0, c) for p, c in zip(parts, counts)], dim)


class _AllGather(torch.autograd.Function):
    """Every rank's ``x`` (equal shapes), as a tuple in rank order; the backward pass gives each rank the sum
    over the ranks of the gradients reaching its own part (one all-reduce; gloo has no reduce-scatter)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor):  # noqa: D102
        parts = [torch.empty_like(x) for _ in range(world_size())]
        _dist().all_gather(parts, x)
        ctx.rank = rank()
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # noqa: D102
        g = torch.stack([torch.zeros_like(grads[ctx.rank]) if d is None else d for d in grads]).contiguous()
        _dist().all_reduce(g)
        return g[ctx.rank]


class _ScaleGrad(torch.autograd.Function):
    """Identity forward; multiplies the incoming gradient by a constant."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad * ctx.scale, None


def main_only(fn: F) -> F:
    """``fn`` on rank 0; ``None`` on the other ranks (for file writes)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if not is_main():
            return None
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
