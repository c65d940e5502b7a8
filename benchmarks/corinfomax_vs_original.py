"""CorInfoMax, ours against the authors' code, on the same machine, data, seed and thread settings.

Imports ``ContrastiveCorInfoMaxHopfield`` and ``hard_sigmoid`` unchanged from a local clone of
BariscanBozkurt/Supervised-CorInfoMax (``--original``; nothing of it is copied into this project) and runs
both implementations on MNIST with the paper's setting (784-500-10, batch 20, T 30/10, eta 0.05, g 0.5,
lr_ff 1.0/0.7, lr_fb 0.15, epoch-0 rates), seeded as the authors' script seeds them
(``np.random.seed(s); torch.manual_seed(s)``, shuffled DataLoader, random-sign beta from numpy). Ours
draws the same weights, order and signs from the same seed (see ``ratenets/rules/corinfomax.py``), so
the two runs are the same computation up to float32 rounding.

It alternates the two in blocks of ``--block`` batches (so that a change of machine load hits both alike)
and prints, per implementation, wall and process-CPU milliseconds per training batch (mean and median),
the extrapolated training epoch (3000 batches), the wall time of a free-phase pass over the 10 000 test
images (the authors evaluate in batches of 20, ours in batches of 1000), the speed-up, and the largest
weight difference between the two after 5 batches and after all batches (the check that the math is
the same).

Example::

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python benchmarks/corinfomax_vs_original.py \\
        --original path/to/Supervised-CorInfoMax --batches 300
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--original", required=True, type=Path,
                   help="root of a clone of BariscanBozkurt/Supervised-CorInfoMax (its src/ is imported)")
    p.add_argument("--batches", type=int, default=300, help="training batches timed per implementation")
    p.add_argument("--block", type=int, default=25, help="batches per alternation block")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-batches", type=int, default=50,
                   help="test batches of 20 timed for the authors' evaluation (scaled to 10 000 images)")
    p.add_argument("--data-root", default=None, help="MNIST root (default: $RATESPIKE_DATA or the cache)")
    a = p.parse_args(argv)
    if not (a.original / "src" / "ContrastiveModels.py").is_file():
        p.error(f"--original {a.original} has no src/ContrastiveModels.py (give the root of a clone of "
                "BariscanBozkurt/Supervised-CorInfoMax)")
    if a.batches < 5 or a.block < 1 or a.eval_batches < 1:
        p.error("--batches must be >= 5, --block and --eval-batches >= 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    import numpy as np
    import torch
    import torch.nn.functional as F

    sys.path.insert(0, str(a.original / "src"))
    from ContrastiveModels import ContrastiveCorInfoMaxHopfield  # the authors' class, unchanged
    from torch_utils import hard_sigmoid

    from ratenets.data import load_dataset, to_float
    from ratenets.rules.corinfomax import CorInfoMax

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    data = load_dataset("mnist", a.data_root)
    X = to_float(data.x_train).reshape(len(data.x_train), -1)
    Y = data.y_train
    Xt = to_float(data.x_test).reshape(len(data.x_test), -1)

    class Images(torch.utils.data.Dataset):  # what ToTensor() + Normalize(0, 1) gives: uint8 / 255
        def __len__(self) -> int:
            return len(Y)

        def __getitem__(self, i: int):
            return X[i], int(Y[i])

    # --- the authors' side, seeded as their MNIST script ---------------------------------------------------
    np.random.seed(a.seed)
    torch.manual_seed(a.seed)
    theirs = ContrastiveCorInfoMaxHopfield([784, 500, 10], 0.99999, 0.15, activation=hard_sigmoid,
                                           device=torch.device("cpu"))
    loader = iter(torch.utils.data.DataLoader(Images(), batch_size=20, shuffle=True, num_workers=0))
    lr = {"ff": np.array([1.0, 0.7]), "fb": np.array([0.15, 0.15])}
    state = {"beta": 1, "idx": 0}

    def their_step() -> None:
        x, y = next(loader)
        x, y1 = x.view(x.size(0), -1).T, F.one_hot(y, 10).T
        state["beta"] = (2 * np.random.randint(2) - 1) * state["beta"]
        theirs.batch_step_hopfield(x, y1, 0.5, lr, 0.05, 0.001, "constant", 0.01, 30, 10, state["beta"], False,
                                   state["idx"] % 500 == 0)
        state["idx"] += 1

    # --- ours, same seed -------------------------------------------------------------------------------------
    ours = CorInfoMax(CorInfoMax.preset("mnist"), data, seeds=(a.seed,), device=torch.device("cpu"))
    order = ours.epoch_order()
    pos = {"b": 0}

    def our_step() -> None:
        idx = order[:, pos["b"] * 20:(pos["b"] + 1) * 20]
        ours.step(ours.x_train[idx], ours.y_train[idx], 1)
        pos["b"] += 1

    def weight_gap() -> float:
        pairs = [(theirs.Wff[0]["weight"].T, ours.params["Wf0"][0]), (theirs.Wff[1]["weight"].T, ours.params["Wf1"][0]),
                 (theirs.Wfb[1]["weight"].T, ours.params["Wb1"][0]), (theirs.B[0]["weight"], ours.params["B0"][0]),
                 (theirs.B[1]["weight"], ours.params["B1"][0])]
        return max(float((t - o).abs().max()) for t, o in pairs)

    times: dict[str, list[tuple[float, float]]] = {"original": [], "ratespike": []}
    gap5 = float("nan")
    done = 0
    while done < a.batches:
        n = min(5 if done == 0 else a.block, a.batches - done)  # a first block of 5 for the 5-batch check
        for name, step in (("original", their_step), ("ratespike", our_step)):
            for _ in range(n):
                w0, c0 = time.perf_counter(), time.process_time()
                step()
                times[name].append((time.perf_counter() - w0, time.process_time() - c0))
        done += n
        if done == 5:
            gap5 = weight_gap()
    gap_end = weight_gap()

    # --- test-set pass -----------------------------------------------------------------------------------------
    w0 = time.perf_counter()
    for b in range(a.eval_batches):
        xb = Xt[b * 20:(b + 1) * 20].T
        neurons = theirs.init_neurons(xb.size(1), device=theirs.device)
        theirs.run_neural_dynamics_hopfield(xb, 0, neurons, 0.5, 0.05, 0.001, "constant", 0.01, 30, beta=0)
    their_eval = (time.perf_counter() - w0) * len(Xt) / (20 * a.eval_batches)
    w0 = time.perf_counter()
    ours.evaluate(1)
    our_eval = time.perf_counter() - w0

    print(f"CorInfoMax MNIST, seed {a.seed}, {a.batches} batches each, alternated in blocks of {a.block}, "
          f"torch threads {torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '')}")
    print("| implementation | wall ms/batch mean | median | CPU ms/batch | train epoch s (wall, 3000 batches) "
          "| test 10k s (wall) |")
    print("|---|---|---|---|---|---|")
    stats = {}
    for name, ev in (("original", their_eval), ("ratespike", our_eval)):
        wall = [w for w, _ in times[name]]
        cpu = [c for _, c in times[name]]
        stats[name] = (statistics.mean(wall), statistics.mean(cpu))
        print(f"| {name} | {1e3 * statistics.mean(wall):.1f} | {1e3 * statistics.median(wall):.1f} | "
              f"{1e3 * statistics.mean(cpu):.1f} | {3000 * statistics.mean(wall):.0f} | {ev:.1f} |")
    print(f"speed-up per training batch: wall {stats['original'][0] / stats['ratespike'][0]:.1f}x, "
          f"CPU {stats['original'][1] / stats['ratespike'][1]:.1f}x; "
          f"one epoch (train + test pass, wall): "
          f"{(3000 * stats['original'][0] + their_eval) / (3000 * stats['ratespike'][0] + our_eval):.1f}x")
    print(f"largest weight difference, original vs ratespike: {gap5:.2e} after 5 batches, "
          f"{gap_end:.2e} after {a.batches}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
