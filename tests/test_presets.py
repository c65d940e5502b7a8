"""One preset mechanism for every rule (ratenets.presets): named configs reachable as ``--preset NAME``."""
from __future__ import annotations

import dataclasses

import pytest

from bridge.cli import main
from bridge.errors import ConfigError
from ratenets.presets import Preset
from ratenets.rules import get_rule, rule_names


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("rule", rule_names())
def test_every_rule_builds_every_preset_and_a_default_per_dataset(rule):
    cls = get_rule(rule)
    assert cls.PRESETS and all(isinstance(p, Preset) for p in cls.PRESETS.values())
    for name, p in cls.PRESETS.items():
        cfg = cls.preset(p.dataset, name)
        assert isinstance(cfg, cls.Config)
        # a preset holds only what differs from the config's defaults, and the config shows it
        for k, v in cls.preset_values(p).items():
            assert getattr(cfg, k) == v, (rule, name, k)
    for d in cls.preset_datasets():
        assert d in cls.PRESETS, f"{rule}: no default preset for {d}"
        assert cls.preset(d) == cls.preset(d, d)


def test_named_variants_differ_from_the_dataset_default():
    bp, cim, dpc = get_rule("bp"), get_rule("corinfomax"), get_rule("dpc")
    assert bp.preset("mnist", "mnist-3layer").hidden == (500, 500) != bp.preset("mnist").hidden
    assert bp.preset("mnist", "mnist-3layer") == bp.preset("mnist", depth=3)
    assert cim.preset("cifar10", "cifar10-3layer").lr_ff == (0.11, 0.06, 0.035)
    paper = dpc.preset("gabor", "gabor-paper")
    assert paper == dpc.Config() and paper != dpc.preset("gabor")
    assert dpc.preset("gabor", "gabor-roll") == dataclasses.replace(paper, roll=True, num_seq=5, train_clips=4096)


def test_a_preset_of_another_dataset_or_an_unknown_name_is_refused():
    bp = get_rule("bp")
    with pytest.raises(ConfigError, match="is for dataset 'mnist', not 'cifar10'"):
        bp.preset("cifar10", "mnist-3layer")
    with pytest.raises(ConfigError, match=r"unknown bp preset 'nosuch'.*choices: .*mnist-3layer"):
        bp.preset("mnist", "nosuch")
    with pytest.raises(ConfigError, match="has no preset for dataset 'gabor'"):
        bp.preset("gabor")


@pytest.mark.parametrize("argv, fragment", [
    (["train", "lpl", "--preset", "nosuch"], "unknown lpl preset 'nosuch'"),
    (["train", "dpc", "--preset", "gabor-papr"], "did you mean 'gabor-paper'?"),
    (["train", "bp", "--preset", "mnist-3layer", "--dataset", "cifar10"], "is for dataset 'mnist'"),
])
def test_cli_preset_errors_are_one_line_listing_the_valid_names(argv, fragment, capsys):
    assert main(argv) == 2
    err = _err(capsys)
    assert fragment in err and len(err.splitlines()) == 1, err
    if "unknown" in fragment:
        assert "choices:" in err and "mnist" in err


def test_cli_lists_a_rules_presets(capsys):
    assert main(["train", "dpc", "--list"]) == 0
    out = capsys.readouterr().out
    assert "gabor: dataset gabor" in out and "gabor-paper: dataset gabor" in out and "gabor-roll" in out


def test_cli_preset_picks_the_config_and_its_dataset(tmp_path, capsys):
    out = tmp_path / "bp.nc"
    assert main(["train", "bp", "--preset", "digits", "--epochs", "1", "--set", "hidden=8", "--no-progress",
                 "--out", str(out)]) == 0
    assert "bp on digits" in capsys.readouterr().out


def test_the_datasets_attribute_is_derived_from_the_presets():
    for rule in rule_names():
        cls = get_rule(rule)
        assert cls.datasets == tuple(dict.fromkeys(p.dataset for p in cls.PRESETS.values()))
    assert get_rule("dpc").datasets == ("gabor",) and "stl10" in get_rule("lpl").datasets


def test_a_sweep_point_may_name_a_preset():
    from bridge.commands.sweep import _resolver

    resolve = _resolver("train")
    cfg, batched = resolve({"rule": "bp", "preset": "mnist-3layer"})
    assert cfg.hidden == (500, 500) and batched
    assert resolve({"rule": "dpc", "preset": "gabor-paper"})[0] == get_rule("dpc").Config()
    with pytest.raises(ConfigError, match="unknown bp preset"):
        resolve({"rule": "bp", "preset": "nosuch"})
