"""The one contract test: every check on every case of tests/cases.py."""

from __future__ import annotations

import copy
import inspect
import io

import pyro
import pyro.distributions as dist
import pytest
import torch
from cases import CASES, Case
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

import pyro_flows as pf

IDS = sorted(CASES)


@pytest.fixture(params=IDS)
def case(request, contract_defaults) -> Case:
    """A fresh case, built in ``--dtype`` on ``--device`` (float32 on the CPU by default)."""
    return CASES[request.param]()


def bind(t, context):
    return t if context is None else t.condition(context)


def elementwise(constraint):
    while isinstance(constraint, torch.distributions.constraints.independent):
        constraint = constraint.base_constraint
    return constraint


def draw_in(constraint, like):
    """Random values shaped like ``like`` inside ``constraint`` (the real line or an interval)."""
    constraint = elementwise(constraint)
    if isinstance(constraint, torch.distributions.constraints.interval):
        low, high = constraint.lower_bound, constraint.upper_bound
        return low + (high - low) * (0.02 + 0.96 * torch.rand_like(like))
    assert constraint is torch.distributions.constraints.real, f"no sampler for {constraint}"
    return torch.randn_like(like)


def std_normal_log_prob(z, event_dim):
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(tuple(range(-event_dim, 0)))


# --- the registry itself ---------------------------------------------------------------------------------
def public_transforms():
    for name in pf.__all__:
        obj = getattr(pf, name)
        if inspect.isclass(obj) and issubclass(obj, torch.distributions.Transform) and obj is not pf.Flow:
            yield name, obj
        elif inspect.isfunction(obj) and obj.__module__ == "pyro_flows.flows":
            yield name, obj


def test_registry_is_complete():
    missing = [n for n, _ in public_transforms() if not any(i == n or i.startswith(n + "-") for i in IDS)]
    assert not missing, f"public transforms without a case in tests/cases.py: {missing}"
    # Coupling's conditional path is the one its subclasses' conditional cases run.
    conditional = [n for n, obj in public_transforms() if accepts_context(obj) and n != "Coupling"]
    no_cond = [n for n in conditional if n + "-conditional" not in IDS]
    assert not no_cond, f"conditional transforms without a '-conditional' case: {no_cond}"


def accepts_context(obj) -> bool:
    """Whether a factory or class takes ``context_dim``, following ``**kwargs`` up the class hierarchy."""
    inits = [c.__dict__["__init__"] for c in obj.__mro__ if "__init__" in c.__dict__] if inspect.isclass(obj) else [obj]
    for init in inits:
        params = inspect.signature(init).parameters
        if "context_dim" in params:
            return True
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return False
    return False


# --- exactness in float64 --------------------------------------------------------------------------------
def test_log_det_matches_autograd_jacobian_float64(case):
    t = case.transform.to(torch.float64)
    x = case.x.double()
    ctx = None if case.context is None else case.context.double()
    for i in range(x.shape[0]):
        bound = bind(t, None if ctx is None else ctx[i])
        xi = x[i]
        y = bound(xi)
        assert y.dtype == torch.float64
        jac = torch.autograd.functional.jacobian(lambda v, bound=bound: bound(v.clone()), xi.clone())
        n = xi.numel()
        sign, logabsdet = torch.linalg.slogdet(jac.reshape(n, n))
        assert sign != 0
        ld = bound.log_abs_det_jacobian(xi, y)
        assert ld.shape == ()
        torch.testing.assert_close(ld, logabsdet, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-10)], ids=["f32", "f64"])
def test_round_trip_without_cache(case, dtype, tol):
    t = case.transform.to(dtype)
    x = case.x.to(dtype)
    ctx = None if case.context is None else case.context.to(dtype)
    bound = bind(t, ctx)
    y = bound(x)
    x2 = bound.inv(y.clone())  # a new tensor: the cache cannot answer
    torch.testing.assert_close(x2, x, atol=tol, rtol=tol)
    # and from the other side: start in the output space (inside the transform's codomain)
    y0 = draw_in(t.codomain, y)
    x1 = bound.inv(y0)
    torch.testing.assert_close(bound(x1.clone()), y0, atol=tol, rtol=tol)


def test_round_trip_with_cache(case):
    bound = bind(case.transform, case.context)
    y = bound(case.x)
    assert bound.inv(y) is case.x


def test_inverse_log_det_is_minus_forward(case):
    bound = bind(case.transform, case.context)
    y = bound(case.x)
    ld = bound.log_abs_det_jacobian(case.x, y)
    x2 = bound.inv(y.clone())
    inv_ld = bound.inv.log_abs_det_jacobian(y.clone(), x2)
    torch.testing.assert_close(inv_ld, -ld, atol=1e-5, rtol=1e-5)


def test_forward_and_log_det_agree_with_torch_interface(case):
    t = case.transform
    y, ld = t.forward_and_log_det(case.x, case.context)
    bound = bind(t, case.context)
    torch.testing.assert_close(y, bound(case.x.clone()))
    x, ld2 = t.inverse_and_log_det(y, case.context)
    torch.testing.assert_close(x, case.x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ld2, ld, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [(), (5,), (3, 4)], ids=["scalar", "5", "3x4"])
def test_batch_shapes(case, batch):
    t = case.transform
    x = torch.randn(*batch, *case.event_shape)
    ctx = None if case.context is None else torch.randn(*batch, case.context.shape[-1])
    bound = bind(t, ctx)
    y = bound(x)
    assert y.shape == x.shape
    assert bound.log_abs_det_jacobian(x, y).shape == torch.Size(batch)
    x2 = bound.inv(y.clone())
    assert x2.shape == x.shape
    assert bound.inv.log_abs_det_jacobian(y, x2).shape == torch.Size(batch)


# --- as a distribution -----------------------------------------------------------------------------------
def data_of(case):
    """Data for the case's distribution: ``case.x`` where the codomain is the real space, else values in it."""
    codomain = case.transform.codomain
    return case.x if elementwise(codomain) is torch.distributions.constraints.real else draw_in(codomain, case.x)


def single_context(case):
    return None if case.context is None else case.context[0]


def test_distribution_sample_and_log_prob(case):
    t, ctx = case.transform, single_context(case)
    d = pf.flow_distribution(t, context=ctx)
    s = d.sample(torch.Size([6]))
    assert s.shape == (6, *case.event_shape)
    data = data_of(case)
    lp = d.log_prob(data)
    assert lp.shape == (data.shape[0],) and torch.isfinite(lp).all()
    z, ld = t.inverse_and_log_det(data.clone(), ctx)
    expected = std_normal_log_prob(z, len(case.event_shape)) - ld
    torch.testing.assert_close(lp, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("validate", [False, True], ids=["plain", "validated"])
def test_distribution_scores_its_own_samples(case, validate):
    # The declared codomain must hold every sample, and log_prob must score a fresh copy of each.
    t, ctx = case.transform, single_context(case)
    d = pf.flow_distribution(t, context=ctx)
    torch.manual_seed(1)
    s = d.sample(torch.Size([64]))
    assert bool(d.support.check(s).all()), "a sample lies outside the distribution's declared support"
    checked = dist.TransformedDistribution(d.base_dist, d.transforms, validate_args=validate)
    lp = checked.log_prob(s.clone())
    assert lp.shape == (64,) and torch.isfinite(lp).all()


def test_every_output_depends_on_the_context(case):
    # A conditional transform's context must reach every output it transforms (a coupling's kept entries
    # pass through unchanged, context or not): probed by changing the context alone.
    if case.context is None:
        pytest.skip("unconditional")
    t = case.transform
    x = case.x[:1].expand(8, *case.event_shape)
    with torch.no_grad():
        y = t.condition(torch.randn(8, case.context.shape[-1]))(x)
    changed = (y - y[:1]).abs().amax(0) > 1e-6
    transformed = (y - x).abs().amax(0) > 1e-6
    assert bool(changed[transformed].all()), (
        f"{int((transformed & ~changed).sum())} transformed outputs ignore the context"
    )


def params_of(t):
    return [(n, p) for n, p in t.named_parameters() if p.requires_grad]


def assert_all_grads(t):
    for name, p in params_of(t):
        assert p.grad is not None, f"no gradient reached {name}"
        assert torch.isfinite(p.grad).all(), f"non-finite gradient in {name}"
        assert p.grad.abs().sum() > 0, f"zero gradient reached {name}"


def needs_params(case):
    if not params_of(case.transform):
        pytest.skip("this transform has no parameters")


def test_gradients_reach_every_parameter_via_log_prob(case):
    needs_params(case)
    t = case.transform
    d = pf.flow_distribution(t, context=single_context(case))
    (-d.log_prob(data_of(case)).sum()).backward()
    assert_all_grads(t)


def test_gradients_reach_every_parameter_via_rsample(case):
    needs_params(case)
    t = case.transform
    d = pf.flow_distribution(t, context=single_context(case))
    z = d.rsample(torch.Size([8]))
    target = dist.Normal(1.0, 2.0).expand(case.event_shape).to_event(len(case.event_shape))
    (d.log_prob(z) - target.log_prob(z)).sum().backward()  # a one-sample KL(q || p) estimate
    assert_all_grads(t)


def test_log_prob_of_sample_keeps_its_graph(case):
    needs_params(case)
    t = case.transform
    d = pf.flow_distribution(t, context=single_context(case))
    lp = d.log_prob(d.sample(torch.Size([8])))
    assert lp.requires_grad, "log_prob(sample()) lost its graph to the flow's parameters"
    (-lp.sum()).backward()
    assert_all_grads(t)


# --- persistence ------------------------------------------------------------------------------------------
def outputs(t, case):
    with torch.no_grad():
        return bind(t, case.context)(case.x.clone())


def test_deepcopy_and_pickle(case):
    t = case.transform
    ref = outputs(t, case)
    torch.testing.assert_close(outputs(copy.deepcopy(t), case), ref, rtol=0, atol=0)
    buf = io.BytesIO()
    torch.save(t, buf)
    buf.seek(0)
    torch.testing.assert_close(outputs(torch.load(buf, weights_only=False), case), ref, rtol=0, atol=0)


def test_state_dict_round_trip(case, request):
    t = case.transform
    fresh = CASES[request.node.callspec.params["case"]]().transform
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    fresh.load_state_dict(t.state_dict())
    fresh.train(t.training)
    torch.testing.assert_close(outputs(fresh, case), outputs(t, case), rtol=0, atol=0)


# --- in Pyro ----------------------------------------------------------------------------------------------
def test_pyro_module_and_one_svi_step(case):
    pyro.clear_param_store()
    t, ctx = case.transform, single_context(case)
    shape = case.event_shape

    def model():
        pyro.sample("z", dist.Normal(1.0, 2.0).expand(shape).to_event(len(shape)))

    def guide():
        pyro.module("flow", t)
        pyro.sample("z", pf.flow_distribution(t, context=ctx))

    before = {n: p.detach().clone() for n, p in params_of(t)}
    svi = SVI(model, guide, Adam({"lr": 1e-2}), Trace_ELBO())
    loss = svi.step()
    assert torch.isfinite(torch.tensor(loss))
    registered = set(pyro.get_param_store().keys())
    for n, p in params_of(t):
        assert f"flow$$${n}" in registered, f"pyro.module did not register {n}"
        assert not torch.equal(p.detach(), before[n]), f"one SVI step left {n} unchanged"


# --- clear errors -----------------------------------------------------------------------------------------
def test_wrong_event_shape_is_a_clear_error(case):
    bound = bind(case.transform, case.context)
    bad = torch.randn(BATCH_BAD, *[s + 1 for s in case.event_shape])
    with pytest.raises(ValueError, match="expected"):
        bound(bad)
    with pytest.raises(ValueError, match="expected"):
        bound.inv(bad)


BATCH_BAD = 2
BATCH = 4


def test_integer_input_is_a_clear_error(case):
    bound = bind(case.transform, case.context)
    with pytest.raises(TypeError, match="floating"):
        bound(torch.zeros(2, *case.event_shape, dtype=torch.long))


def test_other_dtype_is_a_clear_error(case):
    bound = bind(case.transform, case.context)
    if bound.dtype is None:
        assert bound(case.x.half()).dtype == torch.float16  # no floating state: any float dtype works
        return
    for dtype in {torch.float64, torch.float32, torch.float16} - {bound.dtype}:
        with pytest.raises(TypeError, match="dtype"):
            bound(case.x.to(dtype))
        with pytest.raises(TypeError, match="dtype"):
            bound.inv(case.x.to(dtype))


def test_context_errors(case):
    t = case.transform
    if case.context is None:
        with pytest.raises(ValueError, match="unconditional"):
            pf.flow_distribution(t, context=torch.randn(3))
        with pytest.raises(ValueError, match="unconditional"):
            t.forward_and_log_det(case.x, torch.randn(BATCH, 3))
        return
    with pytest.raises(ValueError, match="needs a context"):
        t(case.x)
    with pytest.raises(ValueError, match="needs a context"):
        t.forward_and_log_det(case.x)
    with pytest.raises(ValueError, match="needs a context"):
        t.inverse_and_log_det(case.x)
    with pytest.raises(ValueError, match="expected"):
        t.condition(torch.randn(BATCH_BAD, case.context.shape[-1] + 1))(case.x)
    with pytest.raises(ValueError, match="broadcasts"):
        t.condition(torch.randn(BATCH + 1, case.context.shape[-1]))(case.x)
    other = torch.float32 if case.context.dtype == torch.float64 else torch.float64
    with pytest.raises(TypeError, match="dtype"):
        t.condition(case.context.to(other))(case.x)
