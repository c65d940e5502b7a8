"""The self-supervised rules share one base (seed, optimiser, probe and checkpoint bookkeeping)."""
from __future__ import annotations

import ast
import copy
import inspect

import numpy as np
import pytest
import torch

from ratenets.rules import get_rule
from ratenets.rules.base import SelfSupervisedRule

SSL = ("lpl", "clapp", "clapp-s", "hinge-cpc", "dpc")
#: what the base owns; a rule file that defines one of these again has copied the bookkeeping back
SHARED = {"state_dict", "load_state_dict", "seeded_generator", "adam", "load_images",
          "progress"}


@pytest.mark.parametrize("rule", SSL)
def test_every_self_supervised_rule_uses_the_base_and_repeats_none_of_it(rule):
    cls = get_rule(rule)
    assert issubclass(cls, SelfSupervisedRule) and not cls.batched_seeds
    src = ast.parse(inspect.getsource(inspect.getmodule(cls)))
    for node in ast.walk(src):
        if isinstance(node, ast.ClassDef):
            own = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
            assert not (own & SHARED), f"{node.name} redefines {own & SHARED}"
            assert "__init__" not in own or any(
                isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "__init__"
                for c in ast.walk(node)), f"{node.name}.__init__ does not call the base"
    # every attribute the checkpoint names is set by the constructor
    assert cls.state_attrs and len(set(cls.state_attrs)) == len(cls.state_attrs)


class _Tiny(SelfSupervisedRule):
    name = "tiny"
    state_attrs = ("net", "opts", "gen", "rng", "steps")

    def __init__(self, seed: int) -> None:
        super().__init__(None, None, seeds=(seed,))
        torch.manual_seed(seed)
        self.net = torch.nn.Linear(3, 2)
        self.opts = [self.adam(self.net.parameters(), lr=0.1), self.adam([self.net.bias], lr=0.2)]
        self.gen = self.seeded_generator()
        self.rng = np.random.default_rng(seed)
        self.steps = 0

    def step(self) -> None:
        loss = self.net(torch.rand(4, 3, generator=self.gen)).pow(2).sum() + float(self.rng.random())
        for o in self.opts:
            o.zero_grad()
        loss.backward()
        for o in self.opts:
            o.step()
        self.steps += 1


def test_the_base_checkpoint_restores_modules_optimisers_generators_and_numbers_exactly():
    a = _Tiny(1)
    a.step()
    state = copy.deepcopy(a.state_dict())  # as the engine's checkpoint: a copy, not the live tensors
    b = _Tiny(2)  # another seed: everything differs until the state is loaded
    b.load_state_dict(state)
    a.step()
    b.step()
    assert b.steps == a.steps == 2
    for pa, pb in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(pa, pb)
    assert torch.equal(a.gen.get_state(), b.gen.get_state()) and a.rng.random() == b.rng.random()


def test_a_checkpoint_with_another_number_of_optimisers_is_refused():
    a = _Tiny(0)
    state = a.state_dict()
    state["opts"] = state["opts"][:1]
    with pytest.raises(ValueError, match="holds 1 states where this run has 2"):
        _Tiny(0).load_state_dict(state)


def test_one_seed_per_instance():
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError, match="one seed per instance"):
        SelfSupervisedRule(None, None, seeds=(0, 1))
