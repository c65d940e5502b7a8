"""``ratespike sweep``: sweep files checked before anything runs, grids on a local Dask cluster, skip, retry,
failing points isolated, collect along the grid's dimensions, job scripts of dask-jobqueue."""
from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import xarray as xr

from bridge import sweep
from bridge.cli import main
from bridge.errors import ConfigError
from bridge.commands.sweep import load


def _spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


BASE = """
    command = "train"
    out_dir = "out"
    [fixed]
    rule = "bp"
    dataset = "digits"
    epochs = 1
    hidden = [16]
    [grid]
"""


@pytest.mark.parametrize("body, fragment", [
    ('command = "train"\nout_dir = "x"\nwhat = 1\n[fixed]\nrule = "bp"\n[grid]\nseed = [0]\n', "'what'"),
    (BASE + "nosuchkey = [1]\n", "'nosuchkey'"),
    (BASE.replace("[grid]", "[grid]\n"), "empty [grid]"),
    (BASE + "lr = []\n", "'lr' needs a non-empty list"),
    (BASE + "lr = ['fast']\n", "field 'lr' expects a number"),
    (BASE + "seeds = ['0-3']\n", "'seeds' is set by the sweep"),
    (BASE + "epochs = [1, 2]\n", "'epochs' is in both"),
    ('command = "train"\nout_dir = "x"\n[grid]\nrule = ["bp", "nosuchrule"]\n', "unknown rule 'nosuchrule'"),
    (BASE + "seed = [0, -1]\n", "seed values"),
    (BASE + "duration = [1.0]\n", "'duration'"),  # an option of spike, not of train
    ('command = "simulate"\nout_dir = "x"\n[grid]\nseed = [0]\n', "'command' must be one of"),
    ('command = "train"\n[grid]\nseed = [0]\n', "out_dir"),
    ('command = "train"\nout_dir = "x"\n[grid]\nseed = [0]\n', "names no rule"),
])
def test_bad_sweep_files_are_one_line_and_exit_2(tmp_path, capsys, body, fragment):
    rc = main(["sweep", str(_spec(tmp_path, body))])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists() and not (tmp_path / "x").exists()  # nothing ran


def test_unreachable_scheduler_is_one_line_exit_2(tmp_path, capsys):
    rc = main(["sweep", str(_spec(tmp_path, BASE + "seed = [0]\n")), "--scheduler", "tcp://127.0.0.1:9",
               "--connect-timeout", "1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "cannot reach Dask scheduler" in err, err
    assert not list((tmp_path / "out").glob("*.nc"))


CLUSTER = BASE + """seed = [0, 1]
    [cluster]
    queue = "cpu"
    walltime = "02:00:00"
    cores = 4
    memory = "8GB"
"""


def test_dry_run_shows_points_and_the_slurm_job_script(tmp_path, capsys):
    assert main(["sweep", str(_spec(tmp_path, CLUSTER)), "--cluster", "slurm", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "seed-0, seed-1: ratespike train bp --dataset digits --epochs 1 --set hidden=16 --seeds 0,1" in out
    for line in ("#SBATCH -p cpu", "#SBATCH --cpus-per-task=4", "#SBATCH -t 02:00:00", "#SBATCH --mem=8G",
                 "export OMP_NUM_THREADS=1", "--nworkers 4", "--nthreads 1"):
        assert line in out, line
    assert not (tmp_path / "out").exists()


def test_pbs_and_sge_job_scripts(tmp_path):
    spec = load(str(_spec(tmp_path, CLUSTER)))
    pbs = sweep.job_script("pbs", {**spec.cluster, "resource_spec": "select=1:ncpus=4"})
    assert "#PBS -q cpu" in pbs and "#PBS -l walltime=02:00:00" in pbs and "select=1:ncpus=4" in pbs
    sge = sweep.job_script("sge", spec.cluster)
    assert "#$ -q cpu" in sge and "h_rt=02:00:00" in sge


@pytest.mark.parametrize("system, extra, fragment", [
    ("pbs", "job_cpu = 3\n", "option for pbs 'job_cpu'"),         # a Slurm-only option
    ("sge", "account = 'lab'\n", "option for sge 'account'"),     # SGE's job class takes no account
    ("slurm", "memroy = '4GB'\n", "did you mean 'memory'"),
])
def test_jobqueue_options_the_system_lacks_are_refused(tmp_path, capsys, system, extra, fragment):
    rc = main(["sweep", str(_spec(tmp_path, CLUSTER + "    " + extra)), "--cluster", system, "--dry-run"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and fragment in err, err


def test_missing_cores_for_a_cluster(tmp_path, capsys):
    rc = main(["sweep", str(_spec(tmp_path, BASE + "seed = [0]\n[cluster]\nmemory = '4GB'\n")), "--cluster",
               "slurm", "--dry-run"])
    assert rc == 2 and "needs cores" in capsys.readouterr().err


def test_points_names_seed_blocks_and_spiking_build_root(tmp_path):
    spec = load(str(_spec(tmp_path, BASE + "lr = [1e-3, 5e-4]\nseed = [0, 1, 2]\n")))
    assert [p.name for p in spec.points][:2] == ["lr-0.001_seed-0", "lr-0.001_seed-1"]
    tasks, done = sweep.plan(spec)
    assert not done and len(tasks) == 2  # bp batches seeds: one task per seed block
    assert tasks[0].argv[-4:] == ["--seeds", "0,1,2", "--out", str(tasks[0].out)]
    blocked = load(str(_spec(tmp_path, "seed_block = 2\n" + BASE + "seed = [0, 1, 2]\n",
                             "b.toml")))
    assert [len(t.points) for t in sweep.plan(blocked)[0]] == [2, 1]
    lpl = load(str(_spec(tmp_path, 'command = "train"\nout_dir = "o"\n[fixed]\nrule = "lpl"\ndataset = "digits"\n'
                                   '[grid]\nseed = [0, 1]\n', "l.toml")))
    assert [len(t.points) for t in sweep.plan(lpl)[0]] == [1, 1]  # lpl trains seeds one by one
    spike = load(str(_spec(tmp_path, 'command = "spike"\nout_dir = "s"\n[fixed]\nexperiment = "stdp-protocol"\n'
                                     'duration = 1.0\n[grid]\nseed = [0, 1]\n', "s.toml")))
    tasks, _ = sweep.plan(spike, build_root=tmp_path / "build")
    assert len(tasks) == 2 and all(t.argv[-2:] == ["--build-root", str(tmp_path / "build")] for t in tasks)
    assert tasks[0].argv[:4] == ["spike", "stdp-protocol", "--duration", "1.0"]
    # a composed config: a bare unique field name and a quoted dotted path, checked before anything runs
    dotted = load(str(_spec(tmp_path, 'command = "spike"\nout_dir = "s"\n[fixed]\nexperiment = "lpl-network"\n'
                                      'duration = 1.0\ntau_mem_ms = 19.0\n"inhibition.w_max" = 0.8\n[grid]\n'
                                      'seed = [0]\n', "d.toml")))
    argv = sweep.plan(dotted, build_root=tmp_path / "build")[0][0].argv
    assert "tau_mem_ms=19.0" in argv and "inhibition.w_max=0.8" in argv
    with pytest.raises(ConfigError, match="ambiguous"):
        load(str(_spec(tmp_path, 'command = "spike"\nout_dir = "s"\n[fixed]\nexperiment = "lpl-network"\n'
                                 'duration = 1.0\nw_max = 0.8\n[grid]\nseed = [0]\n', "a.toml")))


def test_a_killed_point_is_retried_with_resume_and_a_bad_one_is_not(tmp_path, monkeypatch):
    spec = load(str(_spec(tmp_path, 'command = "train"\nout_dir = "o"\nretries = 2\n[fixed]\nrule = "lpl"\n'
                                    'dataset = "digits"\n[grid]\nseed = [0]\n')))
    task = sweep.plan(spec)[0][0]
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        code = -9 if len(calls) < 3 else 0
        if code == 0:
            ds = xr.Dataset({"x": ("epoch", [1.0])}, attrs={"complete": 1, "ratespike_version": "0"})
            ds.to_netcdf(task.out)
        return subprocess.CompletedProcess(cmd, code)

    monkeypatch.setattr(sweep.subprocess, "run", fake_run)
    res = sweep.run_task(task)
    assert res["status"] == "ok" and res["attempts"] == 3 and all("--resume" in c for c in calls)

    def bad(cmd, **kw):
        calls.append(cmd)
        kw["stdout"].write("ratespike: error: rule 'lpl' diverged\n")
        return subprocess.CompletedProcess(cmd, 2)

    calls.clear()
    monkeypatch.setattr(sweep.subprocess, "run", bad)
    res = sweep.run_task(task)
    assert res == {**res, "status": "failed", "error": "rule 'lpl' diverged", "attempts": 1} and len(calls) == 1

    def killed(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, -9)

    calls.clear()
    monkeypatch.setattr(sweep.subprocess, "run", killed)
    res = sweep.run_task(task)
    assert res["status"] == "failed" and "signal 9" in res["error"] and len(calls) == 3  # bounded: 1 + 2


def _attr(path: Path, name: str):
    with netCDF4.Dataset(path) as nc:
        return getattr(nc, name)


@pytest.mark.slow
def test_sweep_runs_skips_isolates_a_failure_and_collects(tmp_path, capsys):
    # lr = 1e30 makes BP diverge: its seed block fails with a one-line error, the other points finish
    spec = _spec(tmp_path, BASE + "lr = [1e-3, 1e30]\nseed = [0, 1]\n")
    rc = main(["sweep", str(spec), "--workers", "2"])
    cap = capsys.readouterr()
    assert rc == 1, cap.err
    out = tmp_path / "out"
    good = [out / "lr-0.001_seed-0.nc", out / "lr-0.001_seed-1.nc"]
    assert all(int(_attr(p, "complete")) == 1 for p in good)
    assert not (out / "lr-1e+30_seed-0.nc").exists()
    assert "failed: lr-1e+30_seed-0, lr-1e+30_seed-1: training diverged" in cap.out
    assert "4/4 done" not in cap.err and "2 failed" in cap.err and "ETA" in cap.err
    assert "Traceback" not in cap.err + cap.out
    # each point file is the single-seed run of its seed
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    rule = get_rule("bp")
    cfg = rule.Config(epochs=1, hidden=(16,))
    ref, _ = fit(rule, cfg, rule.load_data(cfg, "digits", None), RunContext(dataset="digits", seeds=(1,)))
    np.testing.assert_allclose(xr.open_dataset(good[1])["test_accuracy"].values, ref["test_accuracy"].values)

    # collect refuses an incomplete grid, --partial fills NaN; the failing point never enters the file
    assert main(["sweep", "collect", str(spec), "--out", str(tmp_path / "all.nc")]) == 2
    assert "2 of 4 points have no complete file" in capsys.readouterr().err
    assert not (tmp_path / "all.nc").exists()
    assert main(["sweep", "collect", str(spec), "--out", str(tmp_path / "all.nc"), "--partial"]) == 0
    ds = xr.open_dataset(tmp_path / "all.nc")
    acc = ds["test_accuracy"]
    assert {"lr", "seed", "epoch"} <= set(acc.dims) and ds.sizes["lr"] == 2 and ds.sizes["seed"] == 2
    assert np.isnan(acc.sel(lr=1e30)).all() and (acc.sel(lr=1e-3) > 0.3).all()
    assert ds["point_complete"].sel(lr=1e-3).values.tolist() == [1, 1]
    assert '"lr": 0.001' in str(ds["point_config"].sel(lr=1e-3, seed=0).values)

    # fix the grid: the rerun skips the finished points and runs only the new ones
    before = [p.stat().st_mtime_ns for p in good]
    spec.write_text(spec.read_text().replace("1e30", "5e-4"))
    assert main(["sweep", str(spec), "--workers", "2"]) == 0
    assert "2 already complete, 2 to run in 1 tasks" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in good] == before
    assert main(["sweep", str(spec)]) == 0
    assert "all 4 points complete" in capsys.readouterr().err
    assert main(["sweep", "collect", str(spec), "--out", str(tmp_path / "all.nc")]) == 0
    capsys.readouterr()
    ds = xr.open_dataset(tmp_path / "all.nc")
    assert int(ds.attrs["points_complete"]) == 4 and not np.isnan(ds["test_accuracy"]).any()
    assert ds.attrs["ratespike_kind"] == "sweep"
    assert main(["plot", str(tmp_path / "all.nc"), "--out", str(tmp_path / "all.png")]) == 0
    assert (tmp_path / "all.png").stat().st_size > 1000


def test_partial_point_is_resumed_not_skipped(tmp_path):
    spec = load(str(_spec(tmp_path, BASE.replace("epochs = 1", "epochs = 2") + "seed = [0]\n")))
    from ratenets.rules import get_rule
    from ratenets.train import RunContext, fit

    class Stop(Exception):
        pass

    def stop(epoch, metrics):
        raise Stop

    rule = get_rule("bp")
    cfg = rule.Config(epochs=2, hidden=(16,))
    target = spec.points[0].path(spec.out_dir)
    with pytest.raises(Stop):
        fit(rule, cfg, rule.load_data(cfg, "digits", None), RunContext(dataset="digits", out=target), on_epoch=stop)
    assert int(_attr(target, "complete")) == 0 and Path(str(target) + ".ckpt").is_file()
    tasks, done = sweep.plan(spec)
    assert not done and len(tasks) == 1
    res = sweep.run_task(tasks[0])
    assert res["status"] == "ok", res
    assert int(_attr(target, "complete")) == 1 and not Path(str(target) + ".ckpt").exists()
    ref, _ = fit(rule, cfg, rule.load_data(cfg, "digits", None), RunContext(dataset="digits"))
    np.testing.assert_allclose(xr.open_dataset(target)["test_accuracy"].values, ref["test_accuracy"].values)


def test_plot_of_a_collected_sweep_draws_mean_and_sd_over_seeds(tmp_path, monkeypatch):
    import json

    from bridge import plots
    from bridge.io import provenance

    acc = np.array([[[0.5, 0.6], [0.7, 0.8]], [[0.55, 0.65], [0.75, 0.85]]])  # (rule, seed, epoch)
    ds = xr.Dataset({"test_accuracy": (("rule", "seed", "epoch"), acc)},
                    coords={"rule": ["bp", "fa"], "seed": [0, 1], "epoch": [1, 2]},
                    attrs=provenance(kind="sweep", config_json="{}", seed=[0, 1],
                                     extra={"sweep_dims": json.dumps(["rule", "seed"]), "points_complete": 4}))
    drawn = []
    real = plots.save_figure

    def keep(fig, path):
        ax = fig.axes[0]
        drawn.append([line.get_ydata().tolist() for line in ax.lines if len(line.get_ydata()) == 2])
        return real(fig, path)

    monkeypatch.setattr(plots, "save_figure", keep)
    png = plots.plot_file(ds, tmp_path / "s.png")
    assert png.stat().st_size > 1000
    means = [ys for ys in drawn[0] if ys in ([0.6, 0.7], [0.65, 0.75])]
    assert len(means) == 2  # one line per rule: the seed mean at each epoch


def test_exclude_leaves_points_out_and_bad_excludes_are_refused(tmp_path, capsys):
    head = 'command = "train"\nout_dir = "o"\n'
    grid = '[grid]\nrule = ["bp", "fa"]\ndataset = ["digits", "synthetic"]\nseed = [0, 1]\n'
    spec = load(str(_spec(tmp_path, head + 'exclude = [{rule = "fa", dataset = "synthetic"}]\n' + grid)))
    assert len(spec.points) == 6 and not any(p.values["rule"] == "fa" and p.values["dataset"] == "synthetic"
                                             for p in spec.points)
    for bad, fragment in (('exclude = [{model = "fa"}]\n', "'model'"), ('exclude = [{rule = "ep"}]\n', "'ep'"),
                          ('exclude = "fa"\n', "list of tables")):
        assert main(["sweep", str(_spec(tmp_path, head + bad + grid, "bad.toml")), "--dry-run"]) == 2
        assert fragment in capsys.readouterr().err


@pytest.mark.parametrize("name", ["corinfomax_table.toml", "fig5_conditions.toml"])
def test_the_analyses_sweep_files_load(name):
    spec = load(str(Path(__file__).resolve().parents[1] / "analyses" / name))
    assert len(spec.points) == {"corinfomax_table.toml": 230, "fig5_conditions.toml": 50}[name]
    assert sweep.job_script("slurm", spec.cluster).startswith("#!/usr/bin/env bash")


def test_which_files_count_as_complete(tmp_path):
    def write(name, **attrs):
        p = tmp_path / name
        xr.Dataset({"x": ("t", [1.0])}, attrs={"ratespike_version": "0", **attrs}).to_netcdf(p)
        return p

    assert sweep.file_complete(write("t1.nc", ratespike_kind="train", complete=1))
    assert not sweep.file_complete(write("t0.nc", ratespike_kind="train", complete=0))
    assert not sweep.file_complete(write("t.nc", ratespike_kind="train"))  # rewritten every epoch
    assert sweep.file_complete(write("s.nc", ratespike_kind="spike"))      # written once, at the end
    assert not sweep.file_complete(write("seg.nc", ratespike_kind="spike", complete=0))
    (tmp_path / "junk.nc").write_text("not netcdf")
    assert not sweep.file_complete(tmp_path / "junk.nc") and not sweep.file_complete(tmp_path / "none.nc")
