"""Composed spiking configs: sub-configs with unique class names, --set by bare or dotted name, schema 1 read."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr

from bridge.config import apply_overrides, field_paths, parse_overrides, replace_config, to_json
from bridge.errors import ConfigError
from spiking.experiments import EXPERIMENTS, get_experiment
from spiking.experiments import lpl_network as ln

#: a schema-1 config, written by the flat ``Config`` of commit 0e67634 (the tiny network, hebb-off, segmented)
SCHEMA1 = Path(__file__).parent / "data" / "lpl_network_config_schema1.json"


def test_every_experiment_and_sub_config_has_its_own_class_name():
    names = []
    for name in EXPERIMENTS:
        cls = get_experiment(name).CONFIG
        names.append(cls.__name__)
        cfg = cls()
        names += [type(getattr(cfg, f)).__name__ for f in cfg.__dataclass_fields__]
        assert json.loads(to_json(cfg))["__class__"] == cls.__name__
    assert "Config" not in names
    tops = [get_experiment(n).CONFIG.__name__ for n in EXPERIMENTS]
    assert len(set(tops)) == len(tops)


def test_set_takes_unique_names_bare_and_the_rest_dotted():
    cfg = apply_overrides(ln.LPLNetworkConfig(), ["tau_mem_ms=19", "neuron.dt_ms=0.1", "rule.w_max=0.9",
                                                  "inhibition.w_max=0.7", "condition=hebb-off"])
    assert cfg.neuron.tau_mem_ms == 19.0 and cfg.rule.w_max == 0.9 and cfg.inhibition.w_max == 0.7
    assert cfg.protocol.condition == "hebb-off"
    with pytest.raises(ConfigError, match="ambiguous: write one of rule.w_max, inhibition.w_max"):
        parse_overrides(cfg, ["w_max=0.5"])
    with pytest.raises(ConfigError, match="tau_istdp_ms"):
        parse_overrides(cfg, ["tau_istdp_ms=20"])  # the schema-1 name is gone from --set
    with pytest.raises(ConfigError, match="neuron.nope"):
        parse_overrides(cfg, ["neuron.nope=1"])


def test_a_sub_config_change_is_validated_by_the_sub_config_and_the_whole():
    with pytest.raises(ConfigError, match="p_input"):
        ln.config(p_input=1.5)                      # Fig5Connectivity
    with pytest.raises(ConfigError, match="8 steps"):
        replace_config(ln.LPLNetworkConfig(), {"neuron.delay_ms": 1.0})  # the composed check


def test_config_json_round_trip_is_nested():
    cfg = ln.config(duration_s=3.0, tau_mem_ms=19.0, **{"inhibition.w_max": 0.8})
    d = json.loads(to_json(cfg))
    assert d["neuron"]["__class__"] == "NeuronConfig" and d["inhibition"]["w_max"] == 0.8
    assert ln.config_from_json(to_json(cfg)) == cfg
    assert len(field_paths(cfg)) == 77              # the 74-field flat Config had the same 77 leaves


def test_schema1_config_reads_as_the_composed_config():
    cfg = ln.config_from_json(SCHEMA1.read_text())
    flat = json.loads(SCHEMA1.read_text())
    assert flat["__class__"] == "Config"
    assert cfg.protocol.condition == "hebb-off" and cfg.connectivity.n_exc == 5 and cfg.rule.fast_rms
    assert cfg.inhibition.tau_ms == flat["tau_istdp_ms"] and cfg.inhibition.w_max == flat["w_max_ie"]
    assert cfg.rule.w_max == flat["w_max"] and cfg.protocol.segment_s == 0.4
    # every schema-1 value lands somewhere: nothing is dropped or defaulted
    paths = field_paths(cfg)
    assert len(paths) == len(flat) - 1


def test_resume_accepts_a_schema1_partial_file_of_the_same_config(tmp_path):
    """``spike lpl-network --resume`` compares the file's (schema-1) config field by field with the new one."""
    from bridge.commands.spike import _partial
    from bridge.io import provenance, write_run

    text = SCHEMA1.read_text()
    out = tmp_path / "p.nc"
    ds = xr.Dataset(attrs=provenance(kind="spike", config_json=text, seed=2, extra={
        "experiment": "lpl-network", "simulated_until_s": 0.4, "complete": 0}))
    ds.attrs["ratespike_schema"] = "1"
    write_run(ds, out, groups={"raw": xr.Dataset({"x": ("d", [1.0])}), "state": xr.Dataset({"y": ("e", [2.0])})})
    same = ln.config_from_json(text)
    got, groups = _partial(out, same, 2, ln.config_from_json)
    assert got.attrs["ratespike_schema"] == "1" and set(groups) == {"raw", "state"}
    with pytest.raises(ConfigError, match="another config or seed"):
        _partial(out, replace_config(same, {"tau_mem_ms": 19.0}), 2, ln.config_from_json)
    with pytest.raises(ConfigError, match="another config or seed"):
        _partial(out, same, 3, ln.config_from_json)


def test_compiled_fields_leave_out_the_run_time_values():
    a = ln.compiled_fields(ln.config(eta=0.5, duration_s=10.0, condition="hebb-off"))
    b = ln.compiled_fields(ln.config())
    assert a == b                                    # one binary for every condition, eta and duration
    assert ln.compiled_fields(ln.config(condition="inhib-off"))["connectivity.n_inh"] == 0


def test_spike_list_names_every_field_once(capsys):
    from bridge.cli import main

    assert main(["spike", "--list"]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("lpl-network"))
    assert "LPLNetworkConfig" in line and "rule.w_max" in line and "inhibition.w_max" in line
    assert " tau_mem_ms," in line and "bcm-rate" in out
