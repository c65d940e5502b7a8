"""One registry per kind: rules, encoders, datasets and spiking experiments each listed in one place."""
from __future__ import annotations

import argparse
import typing

import pytest

from bridge.cli import main


def test_rules_registry_key_is_module_and_class_name():
    from ratenets.rules import RULES, get_rule

    for key, target in RULES.items():
        module = target.split(":")[0]
        assert module == "ratenets.rules." + key.replace("-", "_")
        assert get_rule(key).name == key


def test_every_registered_encoder_resolves_and_the_configs_offer_exactly_the_registry():
    from ratenets.encoders import ENCODERS, encoder_builder, encoder_names
    from ratenets.rules.dpc import DPCConfig
    from ratenets.rules.lpl import LPLConfig

    for name in ENCODERS:
        assert callable(encoder_builder(name))
    lpl = typing.get_args(typing.get_type_hints(LPLConfig)["encoder"])
    dpc = typing.get_args(typing.get_type_hints(DPCConfig)["encoder"])
    assert lpl == encoder_names("ratenets.encoders.conv")
    assert dpc == encoder_names("ratenets.encoders.video")
    assert set(lpl) | set(dpc) == set(ENCODERS)


def test_the_train_help_lists_the_dataset_registry():
    from bridge.commands import train
    from ratenets.data import dataset_names

    p = argparse.ArgumentParser()
    train.add_arguments(p)
    help_text = next(a.help for a in p._actions if "--dataset" in a.option_strings)  # noqa: SLF001
    listed = help_text.split(" (")[0].split(", ")
    assert listed == dataset_names()


def test_the_spike_command_reads_the_one_experiment_registry(capsys):
    from bridge.commands import spike
    from spiking.experiments import EXPERIMENTS

    assert spike.EXPERIMENTS is EXPERIMENTS
    assert all(name in spike.HELP for name in EXPERIMENTS)
    assert main(["spike", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown spiking experiment 'nosuch'" in err and ", ".join(sorted(EXPERIMENTS)) in err


@pytest.mark.parametrize("name", ["vgg12"])
def test_an_unknown_encoder_is_one_line_with_the_choices(name):
    from bridge.errors import ConfigError
    from ratenets.encoders import encoder_builder

    with pytest.raises(ConfigError, match="unknown encoder 'vgg12'.*choices"):
        encoder_builder(name)
