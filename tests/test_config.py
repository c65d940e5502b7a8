"""--set FIELD=VALUE parsing and the typed configs."""
from __future__ import annotations

import dataclasses
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.config import apply_overrides, parse_overrides, to_dict, to_json
from bridge.errors import ConfigError
from ratenets.rules import get_rule, rule_names


@dataclasses.dataclass(frozen=True, kw_only=True)
class Toy:
    lr: float = 0.1
    n: int = 3
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (4, 5)
    name: str = "x"
    opt: float | None = None


def test_types_are_converted():
    cfg = apply_overrides(Toy(), ["lr=0.01", "n=7", "flag=true", "mode=b", "sizes=8,9,10", "name=y", "opt=2.5"])
    assert cfg == Toy(lr=0.01, n=7, flag=True, mode="b", sizes=(8, 9, 10), name="y", opt=2.5)
    assert apply_overrides(Toy(), ["opt=none"]).opt is None


@pytest.mark.parametrize("item, fragment", [
    ("nosuch=1", "unknown config field"),
    ("n=abc", "expects an integer"),
    ("n=1.5", "expects an integer"),
    ("lr=fast", "expects a number"),
    ("flag=maybe", "true or false"),
    ("mode=c", "unknown value"),
    ("noequals", "FIELD=VALUE"),
])
def test_bad_overrides_are_one_line_config_errors(item, fragment):
    with pytest.raises(ConfigError) as e:
        parse_overrides(Toy(), [item])
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_unknown_field_suggests_the_close_one():
    with pytest.raises(ConfigError, match="did you mean 'lr'"):
        parse_overrides(get_rule("bp").preset("mnist"), ["lrr=0.1"])


@pytest.mark.parametrize("field, value", [("epochs", "0"), ("epochs", "-1"), ("batch_size", "0"), ("lr", "0"),
                                          ("lr", "-0.001")])
def test_bp_refuses_nonpositive_values(field, value):
    with pytest.raises(ConfigError, match=field):
        apply_overrides(get_rule("bp").preset("mnist"), [f"{field}={value}"])


def test_every_rule_config_round_trips_through_json():
    import json

    for name in rule_names():
        cfg = get_rule(name).Config()
        d = json.loads(to_json(cfg))
        assert d["__class__"] == type(cfg).__name__
        assert set(d) - {"__class__"} == {f.name for f in dataclasses.fields(cfg)}


@given(lr=st.floats(1e-6, 10, allow_nan=False), n=st.integers(1, 10_000), flag=st.booleans(),
       sizes=st.lists(st.integers(1, 4096), min_size=1, max_size=4))
def test_every_field_survives_set(lr, n, flag, sizes):
    cfg = Toy(lr=lr, n=n, flag=flag, sizes=tuple(sizes))
    items = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in dataclasses.asdict(cfg).items()
             if v is not None]
    assert apply_overrides(Toy(), items) == cfg
    assert to_dict(cfg)["sizes"] == list(sizes)


def test_recorded_fields_of_flat_and_nested_configs():
    from bridge.config import flat_fields, recorded_field

    flat = {"__class__": "Config", "duration_s": 2.0, "w_max": 1.0}
    nested = {"__class__": "X", "protocol": {"__class__": "P", "duration_s": 2.0},
              "rule": {"w_max": 1.0}, "inhibition": {"w_max": 0.5}}
    assert flat_fields(nested) == {"protocol.duration_s": 2.0, "rule.w_max": 1.0, "inhibition.w_max": 0.5}
    assert recorded_field(flat, "duration_s") == recorded_field(nested, "duration_s") == 2.0
    assert recorded_field(nested, "inhibition.w_max") == 0.5
    assert recorded_field(nested, "w_max", "ambiguous") == "ambiguous"
