"""Focused tests of the contract's machinery: caching, gradients, conditioning, Inverse, Compose."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions.conditional import ConditionalTransformedDistribution

import pyro_flows as pf


def grads(module, loss):
    module.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in module.parameters()]


def test_log_prob_of_sample_has_the_gradient_of_fixed_data():
    # d.sample() runs under no_grad; its cached entry must not stand in for the graph log_prob needs.
    torch.manual_seed(0)
    flow = pf.Planar(3)
    d = pf.flow_distribution(flow)
    s = d.sample(torch.Size([16]))
    g_sample = grads(flow, -d.log_prob(s).sum())
    g_data = grads(flow, -d.log_prob(s.clone()).sum())
    for a, b in zip(g_sample, g_data):
        torch.testing.assert_close(a, b)
        assert a.abs().sum() > 0


def test_rsample_then_log_prob_uses_the_cache():
    # IAF-style use: the cached (x, y, log-det) answers, no inverse is computed.
    flow = pf.Planar(3)
    calls = []
    original = flow.inverse_and_log_det
    flow.inverse_and_log_det = lambda *a: calls.append(1) or original(*a)
    d = pf.flow_distribution(flow)
    z = d.rsample(torch.Size([4]))
    d.log_prob(z).sum().backward()
    assert calls == []
    d.log_prob(z.clone())
    assert calls == [1]


def test_cache_size_zero_always_recomputes():
    cached = pf.AffineCoupling(4, hidden_dims=(8,))
    flow = cached.with_cache(0)
    assert list(flow.parameters())[0] is list(cached.parameters())[0]
    x = torch.randn(2, 4)
    y = flow(x)
    assert flow.inv(y) is not x
    assert cached.inv(cached(x)) is x


def test_inverse_is_a_module_with_the_parameters():
    flow = pf.AffineCoupling(4, hidden_dims=(8,))
    inv = flow.inv
    assert isinstance(inv, torch.nn.Module)
    assert inv.inv is flow
    assert {id(p) for p in inv.parameters()} == {id(p) for p in flow.parameters()}
    pyro.clear_param_store()
    pyro.module("maf_direction", inv)
    assert len(pyro.get_param_store()) == len(list(flow.parameters()))


def test_conditional_transformed_distribution():
    torch.manual_seed(0)
    flow = pf.realnvp(4, num_layers=2, hidden_dims=(8,), context_dim=2)
    cond = pf.flow_distribution(flow)
    assert isinstance(cond, ConditionalTransformedDistribution)
    ctx = torch.randn(2)
    d = cond.condition(ctx)
    x = d.sample(torch.Size([5]))
    assert x.shape == (5, 4)
    torch.testing.assert_close(d.log_prob(x), pf.flow_distribution(flow, context=ctx).log_prob(x.clone()))


def test_mixing_conditional_and_plain_parts_in_pyro():
    flow = pf.Compose([pf.Planar(3), pf.AffineCoupling(3, context_dim=2, hidden_dims=(8,))])
    assert flow.context_dim == 2
    base = dist.Normal(torch.zeros(3), torch.ones(3)).to_event(1)
    d = ConditionalTransformedDistribution(base, [flow]).condition(torch.randn(2))
    assert d.log_prob(torch.randn(6, 3)).shape == (6,)


def test_compose_accepts_pyro_builtin_parts():
    torch.manual_seed(0)
    builtin = dist.transforms.AffineTransform(torch.zeros(3), 2.0, event_dim=1)
    flow = pf.Compose([pf.Planar(3), builtin])
    x = torch.randn(5, 3)
    y, ld = flow.forward_and_log_det(x)
    y2 = builtin(flow.parts[0](x))
    torch.testing.assert_close(y, y2)
    x2, ld2 = flow.inverse_and_log_det(y)
    torch.testing.assert_close(x2, x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ld2, ld)


def test_compose_rejects_mismatched_parts():
    with pytest.raises(ValueError, match="event shape"):
        pf.Compose([pf.Planar(3), pf.Planar(4)])
    with pytest.raises(ValueError, match="at least one"):
        pf.Compose([])


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="context_dim"):
        pf.Planar(3, context_dim=0)
    with pytest.raises(ValueError, match="num_layers"):
        pf.realnvp(3, num_layers=0)
    with pytest.raises(ValueError, match="input_dim >= 2"):
        pf.realnvp(1)
    with pytest.raises(ValueError, match="transform at least one"):
        pf.AffineCoupling(3, torch.ones(3, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        pf.AffineCoupling(3, torch.ones(3))
    with pytest.raises(ValueError, match="permutation"):
        pf.Permute([0, 0, 1])
    with pytest.raises(ValueError, match="scale"):
        pf.AffineCoupling(3, scale="relu")


def test_double_and_back():
    flow = pf.realnvp(4, num_layers=2, hidden_dims=(8,)).double()
    y = flow(torch.randn(3, 4, dtype=torch.float64))
    assert y.dtype == torch.float64
    assert pf.flow_distribution(flow).sample().dtype == torch.float64


def test_new_identity_flow():
    # Zero-initialized last layers: a new coupling flow is the identity.
    flow = pf.realnvp(6, num_layers=4, hidden_dims=(16,))
    x = torch.randn(10, 6)
    y, ld = flow.forward_and_log_det(x)
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(ld, torch.zeros(10))


def test_cache_is_stale_after_a_parameter_update():
    # Full-batch training scores the same tensor every step: each step must see the new parameters.
    torch.manual_seed(0)
    flow = pf.realnvp(2, num_layers=2, hidden_dims=(8,))
    d = pf.flow_distribution(flow)
    x = torch.randn(5, 2)
    opt = torch.optim.Adam(flow.parameters(), 1e-2)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = -d.log_prob(x).mean()
        loss.backward()  # a reused cached graph would fail here on the second step
        opt.step()
        losses.append(loss.item())
    torch.testing.assert_close(d.log_prob(x), d.log_prob(x.clone()))
    assert losses[2] < losses[0]
