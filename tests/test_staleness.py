"""A log-density never describes a tensor as it was before an in-place edit, for every registered case; the
cache registers no weakref callbacks (a Ctrl-C inside one would be lost); a chain keeps its cache size when
bound; inputs are checked once per pass."""

from __future__ import annotations

import weakref

import pytest
import torch
from cases import CASES

import pyro_flows as pf

IDS = sorted(CASES)


def _towards_the_middle_(s, support):
    """Edits ``s`` in place, halving its distance to the middle of ``support`` (so it stays inside)."""
    c = support
    while isinstance(c, torch.distributions.constraints.independent):
        c = c.base_constraint
    if isinstance(c, torch.distributions.constraints.interval):
        mid = (c.lower_bound + c.upper_bound) / 2
        s.sub_(mid).mul_(0.5).add_(mid)
    else:
        s.mul_(0.5)


@pytest.mark.parametrize("name", IDS)
def test_a_sample_edited_in_place_is_scored_as_it_is_now(name):
    case = CASES[name]()
    ctx = None if case.context is None else case.context[0]
    d = pf.flow_distribution(case.transform, context=ctx)
    torch.manual_seed(3)
    s = d.sample(torch.Size([4]))
    _towards_the_middle_(s, d.support)  # e.g. the clipping a user does to show samples
    torch.testing.assert_close(d.log_prob(s), d.log_prob(s.clone()), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", [n for n in IDS if n.endswith("-conditional")])
def test_a_bound_context_edited_in_place_is_used_as_it_is_now(name):
    case = CASES[name]()
    ctx = case.context[0].clone()
    d = pf.flow_distribution(case.transform, context=ctx)
    torch.manual_seed(4)
    s = d.sample(torch.Size([4]))
    ctx.add_(1.0)
    fresh = pf.flow_distribution(case.transform, context=ctx.clone())
    torch.testing.assert_close(d.log_prob(s), fresh.log_prob(s.clone()), atol=1e-4, rtol=1e-4)


def test_the_readme_example_of_an_edit_after_sampling():
    d = pf.flow_distribution(pf.iaf(3, num_layers=2, hidden_dims=(8,)))
    x = d.rsample((4,))
    x.detach().mul_(2)  # detach shares the version counter
    torch.testing.assert_close(d.log_prob(x), d.log_prob(x.clone()))


def test_the_cache_registers_no_weakref_callbacks():
    flow = pf.iaf(3, num_layers=2, hidden_dims=(8,))
    x = torch.randn(5, 3)
    y = flow(x)
    refs = weakref.getweakrefs(y) + weakref.getweakrefs(x)
    assert refs, "the cache should hold the tensors weakly"
    assert all(r.__callback__ is None for r in refs)


def test_dead_entries_are_swept():
    flow = pf.IAF(3, (8,))
    for _ in range(100):
        flow(torch.randn(2, 3))
    table = flow._cache()
    assert len(table) == 0
    assert len(table._by_computed) + len(table._by_given) <= 2 * table._SLACK + 2


def test_a_bound_chain_keeps_its_cache_size():
    flow = pf.maf(2, num_layers=2, hidden_dims=(8,), context_dim=3).with_cache(0)
    bound = flow.condition(torch.zeros(3))
    assert bound._cache_size == 0 and all(p._cache_size == 0 for p in bound.parts)


def test_a_pass_checks_its_input_once(monkeypatch):
    calls = []
    check = pf.validation.check_tensor

    def counting(*args, **kwargs):
        calls.append(kwargs.get("owner"))
        return check(*args, **kwargs)

    monkeypatch.setattr(pf.base, "check_tensor", counting)
    flow = pf.maf(4, num_layers=3, hidden_dims=(8,), context_dim=2)
    d = pf.flow_distribution(flow, context=torch.zeros(5, 2))
    calls.clear()
    d.log_prob(torch.zeros(5, 4))
    assert calls.count("Compose") == 1 and "MAF" not in calls, calls


def test_a_conditioner_called_directly_checks_its_context():
    net = pf.nn.WaveNet(1, 16, residual_channels=4, skip_channels=4, dilations=(1,), context_dim=3)
    with pytest.raises(ValueError, match=r"\(\*batch, 3\)"):
        net(torch.zeros(2, 1, 16), torch.zeros(2, 4))  # width 4: its first 3 columns were used silently before
    with pytest.raises(TypeError, match="dtype"):
        net(torch.zeros(2, 1, 16), torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        net(torch.zeros(2, 1, 16), [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="broadcasts"):
        net(torch.zeros(2, 1, 16), torch.zeros(3, 3))
