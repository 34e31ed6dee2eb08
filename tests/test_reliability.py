"""Regression tests for issue 8's reproducers: each would have caught its bug."""

import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.distributions.torch_transform import ComposeTransformModule
from pyro.infer import SVI, JitTrace_ELBO, Trace_ELBO
from pyro.optim import Adam
from torch.distributions import ComposeTransform, IndependentTransform

import pyro_flows as pf


# 1. samples that cannot be scored ---------------------------------------------------------------------
def test_logit_inverse_declares_its_true_codomain_and_scores_its_samples():
    torch.manual_seed(0)
    flow = pf.Compose([pf.AffineCoupling(4, hidden_dims=(8,)), pf.Logit(4, lam=0.05).inv])
    d = pf.flow_distribution(flow)
    s = d.sample(torch.Size([2000])) * 1.0
    outside = ((s < 0) | (s > 1)).float().mean()
    assert outside > 0  # the map does reach beyond [0, 1] ...
    assert bool(d.support.check(s).all())  # ... and says so
    assert torch.isfinite(d.log_prob(s.clone())).all()
    with pytest.raises(ValueError, match="expected data in"):
        pf.Logit(4, lam=0.05)(torch.full((1, 4), 1.2))


# 2. planar in float32 -----------------------------------------------------------------------------------
def test_planar_keeps_a_margin_that_survives_float32():
    flow = pf.Planar(2)
    with torch.no_grad():
        flow.params.u.copy_(torch.tensor([-16.0, 0.0]))
        flow.params.w.copy_(torch.tensor([1.0, 0.0]))
        flow.params.b.zero_()
    x = torch.randn(64, 2)
    y, ld = flow.forward_and_log_det(x)
    assert torch.isfinite(ld).all() and ld.min() >= torch.log(torch.tensor(pf.transforms.planar.MARGIN)) - 1e-3
    x2 = flow.inv(y.clone())
    assert torch.isfinite(x2).all()


# 3. ActNorm initialization -------------------------------------------------------------------------------
def test_actnorm_leaves_a_constant_channel_unscaled_and_warns():
    an = pf.ActNorm(3)
    data = torch.randn(64, 3)
    data[:, 1] = 2.5
    with pytest.warns(UserWarning, match=r"channels \[1\] are constant"):
        z = an.inv(data)
    assert an.log_scale.abs().max() < 5  # no 1e6 scale
    torch.testing.assert_close(z[:, 1], torch.zeros(64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_actnorm_refuses_a_non_finite_initializing_batch(bad):
    an = pf.ActNorm(3)
    data = torch.randn(16, 3)
    data[4, 0] = bad
    with pytest.raises(ValueError, match="finite"):
        an.inv(data)
    assert not bool(an.initialized)
    an.inv(torch.randn(16, 3))
    assert bool(an.initialized) and torch.isfinite(an.loc).all()


def test_reloading_a_glow_through_the_param_store_does_not_reinitialize_actnorm():
    torch.manual_seed(0)
    shape = (1, 4, 4)
    flow = pf.glow(shape, levels=1, depth=2, hidden_channels=4)
    data = torch.rand(32, *shape)
    pyro.clear_param_store()
    d = pf.flow_distribution(flow)
    pyro.module("glow", flow)
    reference = d.log_prob(data).detach()
    store = pyro.get_param_store().get_state()
    pyro.clear_param_store()
    pyro.get_param_store().set_state(store)
    torch.manual_seed(0)  # the same buffers (the 1x1 convolutions' LU permutations): the store holds parameters
    fresh = pf.glow(shape, levels=1, depth=2, hidden_channels=4)
    pyro.module("glow", fresh, update_module_params=True)
    torch.testing.assert_close(pf.flow_distribution(fresh).log_prob(data), reference)


# 4. BatchNorm statistics ---------------------------------------------------------------------------------
def test_a_non_finite_batch_never_reaches_batchnorm_statistics():
    bn = pf.BatchNorm(3)
    bn.inv(torch.randn(32, 3) * 2 + 1)
    before = bn.running_mean.clone(), bn.running_var.clone()
    bad = torch.randn(32, 3)
    bad[3, 2] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        bn.inv(bad)
    torch.testing.assert_close(bn.running_mean, before[0])
    torch.testing.assert_close(bn.running_var, before[1])
    bn.eval()
    assert torch.isfinite(bn.inv(torch.randn(4, 3))).all()


# 5. conditional compose ---------------------------------------------------------------------------------
def test_compose_condition_is_a_compose_transform_module_sharing_the_parameters():
    flow = pf.maf(3, num_layers=2, hidden_dims=(8,), context_dim=2)
    bound = flow.condition(torch.randn(2))
    assert isinstance(bound, ComposeTransformModule) and isinstance(bound, pf.FlowLike)
    assert {id(p) for p in bound.parameters()} == {id(p) for p in flow.parameters()}


# 7. torch's Transform API --------------------------------------------------------------------------------
def test_with_cache_on_inverse_bound_and_compose():
    torch.manual_seed(0)
    planar = pf.Planar(2)
    x = torch.randn(5, 2)
    ind = IndependentTransform(planar.inv, 1)  # calls with_cache
    torch.testing.assert_close(planar(ind(x)), x, atol=1e-5, rtol=1e-5)
    comp = ComposeTransform([planar.inv], cache_size=1)
    torch.testing.assert_close(planar(comp(x)), x, atol=1e-5, rtol=1e-5)
    flow = pf.realnvp(2, num_layers=2, hidden_dims=(8,))
    off = flow.with_cache(0)
    assert off._cache_size == 0 and off.with_cache(1)._cache_size == 1
    y = off(x)
    assert off.inv(y) is not x
    bound = pf.MAF(2, (8,), context_dim=1).condition(torch.randn(1))
    assert bound.with_cache(0)._cache_size == 0
    assert flow._call(x).shape == x.shape and flow.inv._call(x).shape == x.shape


def test_inverse_of_inverse_is_itself():
    t = pf.Planar(2)
    u = pf.Inverse(t)
    assert u.inv is t and u.inv.inv is u and t.inv.inv is t
    assert all(
        isinstance(v, pf.FlowLike)
        for v in (t, u, pf.Compose([t]), pf.Planar(2, context_dim=1).condition(torch.zeros(1)))
    )
    assert pf.Compose([pf.MAF(2, (4,)), pf.IAF(2, (4,))]).fast == "neither" and "neither" in pf.FAST


# 8. cache staleness --------------------------------------------------------------------------------------
@pytest.mark.parametrize("assign", [False, True])
def test_load_state_dict_makes_cached_entries_stale(assign):
    torch.manual_seed(0)
    flow, other = pf.MAF(3, (8,)), pf.MAF(3, (8,))
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p))
    x = torch.randn(4, 3)
    y_old = flow(x)
    flow.load_state_dict(other.state_dict(), assign=assign)
    torch.testing.assert_close(flow(x), other(x.clone()))
    assert not torch.allclose(flow(x), y_old)
    with torch.no_grad():  # MADE's masked-weight and plan caches follow the same rule
        torch.testing.assert_close(flow.inv(x.clone()), other.inv(x.clone()))


# 13. one flow, many sample sites ------------------------------------------------------------------------
def test_every_sample_is_scored_from_the_pass_that_drew_it():
    torch.manual_seed(0)
    flow = pf.iaf(4, num_layers=2, hidden_dims=(8,))
    slow = []
    for part in flow.parts:
        original = part._inverse_and_log_det
        part._inverse_and_log_det = lambda *a, f=original: slow.append(1) or f(*a)
    steps = 6

    def model():
        for t in range(steps):
            pyro.sample(f"z_{t}", dist.Normal(torch.zeros(4), 1.0).to_event(1))

    def guide():
        pyro.module("flow", flow)
        for t in range(steps):
            pyro.sample(f"z_{t}", pf.flow_distribution(flow))

    pyro.clear_param_store()
    SVI(model, guide, Adam({"lr": 1e-3}), Trace_ELBO()).step()
    assert slow == [], f"{len(slow)} sequential inverses: a sample was scored without its cached pass"


def test_the_cache_does_not_keep_dropped_tensors():
    import gc
    import weakref

    flow = pf.IAF(3, (8,))
    z = torch.randn(10, 3)
    x = flow(z)
    ref = weakref.ref(x)
    assert len(flow._cache()) == 1
    del x
    gc.collect()
    assert ref() is None and len(flow._cache()) == 0


# 14. sign and jit ----------------------------------------------------------------------------------------
def test_jit_traced_elbo_with_a_compose_guide():
    flow = pf.iaf(3, hidden_dims=(8,), num_layers=2)

    def model():
        pyro.sample("z", dist.Normal(torch.ones(3), 1.0).to_event(1))

    def guide():
        pyro.module("flow", flow)
        pyro.sample("z", pf.flow_distribution(flow))

    pyro.clear_param_store()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        svi = SVI(model, guide, Adam({"lr": 1e-2}), JitTrace_ELBO())
        losses = [svi.step() for _ in range(3)]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert flow.sign == 1 and pf.Reverse(3).sign == -1 and pf.Compose([pf.Reverse(3), pf.Reverse(3)]).sign == 1


# 15. the one-line swap -----------------------------------------------------------------------------------
def test_a_list_of_iaf_layers_gets_a_new_ordering_per_layer():
    torch.manual_seed(0)
    layers = [pf.IAF(6) for _ in range(4)]
    orderings = {tuple(layer.conditioner.degrees.tolist()) for layer in layers}
    assert len(orderings) == 4
    assert pf.IAF(6, ordering="natural").conditioner.degrees.tolist() == [1, 2, 3, 4, 5, 6]


def test_default_networks_are_sized_to_the_input():
    assert pf.nn.default_hidden_dims(1) == (32, 32)
    assert pf.nn.default_hidden_dims(784) == (512, 512)
    assert pf.maf(2).parts[0].conditioner.hidden_dims == (32, 32)
    assert pf.realnvp(64).parts[0].conditioner.net.net[0].out_features == 512


def test_flow_distribution_refuses_a_base_that_is_neither_a_distribution_nor_callable():
    with pytest.raises(TypeError, match="base must be"):
        pf.flow_distribution(pf.Planar(2), base="normal")
