"""Two foreign test suites, re-stated for pyro_flows.

Part A, the Pyro harness. Pyro checks each of its flows with the helpers of ``TransformTests`` in
``tests/distributions/test_transforms.py`` (pyro-ppl/pyro): an inverse that bypasses the cache, sample and
``forward_shape``/``inverse_shape`` checks, a log-det against a finite-difference Jacobian (triangular in the
variable ordering for autoregressive flows), and a few maximum-likelihood optimizer steps; conditional flows
get the same checks after ``condition(z)``, plus two module-level tests of conditional inverses and of the
conditional compose. Here each of those Pyro tests runs against the pyro_flows transform that replaces the
Pyro flow it was written for (``planar`` -> ``pf.Planar``, ``affine_autoregressive`` -> ``pf.IAF`` and
``pf.MAF``, ...). Pyro tests whose flow has no pyro_flows counterpart are listed and skipped with the reason.

Part B, torch's generic checks. ``test/distributions/test_transforms.py`` (pytorch/pytorch) checks every
transform, its inverse, with the cache on and off: ``t.inv.inv is t``, equality, ``with_cache``, the round
trip with the cache used and bypassed (``y.clone()``), shape bookkeeping of compositions and transformed
distributions, tracing with ``torch.jit.trace``, and the log-det against the autograd Jacobian of a batch.
Here those checks run on every case of ``tests/cases.py``.

The logic follows the two originals; the code and wording are this project's own. Where the adaptation
departs from an original it says so next to the check (the main one: Pyro's finite-difference and
round-trip checks run in float64, since they test maths, not float32 round-off, which test_contract.py
covers at 1e-4).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import pyro.distributions as dist
import pytest
import torch
from cases import CASES, randomize
from pyro.distributions.conditional import (
    ConditionalComposeTransformModule,
    ConditionalTransformedDistribution,
)
from pyro.distributions.torch_transform import ComposeTransformModule, TransformModule
from torch.distributions import constraints
from torch.distributions.transforms import AffineTransform, ComposeTransform, SoftplusTransform

import pyro_flows as pf

CONTEXT_DIM = 3


# =========================================================================================================
# Part A: Pyro's TransformTests harness
# =========================================================================================================
PYRO_EPS = 1e-4  # Pyro's finite-difference step and its tolerance on the log-det
PYRO_DELTA = 1e-6  # Pyro's tolerance on f^{-1}(f(x)) = x


@dataclass
class Twin:
    """A Pyro harness test and the pyro_flows transform that stands in for the Pyro flow it tests."""

    pyro_test: str  # Pyro's test name, with the variant in brackets
    pf_name: str
    build: Callable  # build(event_shape, context_dim) -> flow
    event_dim: int = 1
    conditional: bool = False
    prepare: Callable | None = None  # called on the float flow after randomizing it

    @property
    def autoregressive(self) -> bool:
        return self.pf_name in ("IAF", "MAF")


def _hidden(shape):
    """Pyro's default hidden width for autoregressive and coupling helpers: 3 D + 1."""
    return (3 * math.prod(shape) + 1,)


def _vector(cls, **kw):
    return lambda shape, c: cls(shape[0], **kw) if c is None else cls(shape[0], context_dim=c, **kw)


def _autoregressive(cls, scale):
    return lambda shape, c: cls(shape[0], _hidden(shape), scale=scale, context_dim=c)


def _coupling_vector(shape, c):
    return pf.AffineCoupling(shape[0], context_dim=c, hidden_dims=_hidden(shape))


def _coupling_channels(shape, c):
    # Pyro's dim=-2 splits a 2-D event along its first axis; pyro_flows' image coupling splits a (C, H, W)
    # event along its first axis (the channel mask), so the event_dim=2 test becomes an event_dim=3 one.
    return pf.AffineCoupling(shape, pf.masks.channels(shape), context_dim=c, hidden_channels=4, num_blocks=1)


def _warm_batchnorm(t):
    """Pyro's recipe: one pass of data with non-zero mean and non-unit spread through the statistics-taking
    direction in training mode, then eval mode (where the inverse is the exact inverse)."""
    d = t.event_shape[0]
    t.train()
    with torch.no_grad():
        t.inv(
            torch.normal(torch.arange(0.0, d).expand(16, d), torch.arange(1.0, 1.0 + d) / d).to(
                next(t.parameters()).dtype
            )
        )
    t.eval()


def _random_permutation(shape, c):
    return pf.Permute(torch.randperm(shape[0]))


TWINS = [
    # test_affine_autoregressive: stable=False is the exp scale, stable=True the sigmoid-gated one.
    # Pyro's AffineAutoregressive is fast forward (IAF); its inverse direction as a layer is MAF.
    Twin("affine_autoregressive[stable=False]", "IAF", _autoregressive(pf.IAF, "exp")),
    Twin("affine_autoregressive[stable=False]", "MAF", _autoregressive(pf.MAF, "exp")),
    Twin("affine_autoregressive[stable=True]", "IAF", _autoregressive(pf.IAF, "sigmoid")),
    Twin("affine_autoregressive[stable=True]", "MAF", _autoregressive(pf.MAF, "sigmoid")),
    Twin("affine_coupling[dim=-1]", "AffineCoupling", _coupling_vector),
    Twin("affine_coupling[dim=-2]", "AffineCoupling-channels", _coupling_channels, event_dim=3),
    Twin("batchnorm", "BatchNorm", _vector(pf.BatchNorm), prepare=_warm_batchnorm),
    Twin("conditional_affine_autoregressive", "IAF", _autoregressive(pf.IAF, "softclamp"), conditional=True),
    Twin("conditional_affine_autoregressive", "MAF", _autoregressive(pf.MAF, "softclamp"), conditional=True),
    Twin("conditional_affine_coupling[dim=-1]", "AffineCoupling", _coupling_vector, conditional=True),
    Twin(
        "conditional_affine_coupling[dim=-2]",
        "AffineCoupling-channels",
        _coupling_channels,
        event_dim=3,
        conditional=True,
    ),
    Twin("conditional_planar", "Planar", _vector(pf.Planar, hidden_dims=(10 * CONTEXT_DIM,)), conditional=True),
    Twin("conditional_radial", "Radial", _vector(pf.Radial, hidden_dims=(10 * CONTEXT_DIM,)), conditional=True),
    Twin("permute[dim=-1]", "Permute", _random_permutation),
    Twin("permute[dim=-1]", "Reverse", lambda shape, c: pf.Reverse(shape[0])),
    Twin("planar", "Planar", _vector(pf.Planar)),
    Twin("radial", "Radial", _vector(pf.Radial)),
]

# Pyro's harness tests whose flow pyro_flows does not have (kept here so the mapping is complete and visible).
NO_TWIN = {
    "block_autoregressive": "no block neural autoregressive flow in pyro_flows",
    "conditional_generalized_channel_permute": "InvertibleConv1x1 takes no context",
    "conditional_householder": "no Householder flow in pyro_flows",
    "conditional_matrix_exponential": "no matrix-exponential flow in pyro_flows",
    "conditional_neural_autoregressive": "no neural autoregressive flow in pyro_flows",
    "conditional_spline": "no spline flows in pyro_flows",
    "conditional_spline_autoregressive": "no spline flows in pyro_flows",
    "discrete_cosine": "no DCT transform in pyro_flows",
    "haar_transform": "no Haar transform in pyro_flows",
    "elu": "no ELU transform in pyro_flows",
    "householder": "no Householder flow in pyro_flows",
    "leaky_relu": "no leaky-ReLU transform in pyro_flows",
    "lower_cholesky_affine": "no fixed lower-triangular affine map in pyro_flows",
    "matrix_exponential": "no matrix-exponential flow in pyro_flows",
    "neural_autoregressive": "no neural autoregressive flow in pyro_flows",
    "ordered_transform": "no ordered transform in pyro_flows",
    "permute[dim=-2]": "pyro_flows permutes the last dimension only",
    "polynomial": "no polynomial flow in pyro_flows",
    "simplex_to_ordered": "no simplex transform in pyro_flows",
    "spline": "no spline flows in pyro_flows",
    "spline_coupling": "no spline flows in pyro_flows",
    "spline_autoregressive": "no spline flows in pyro_flows",
    "sylvester": "no Sylvester flow in pyro_flows",
    "normalize_transform": "no normalizing (p-norm) transform in pyro_flows",
    "softplus": "no softplus transform in pyro_flows",
    "positive_power": "no power transform in pyro_flows",
    "cholesky_transform": "matrix transforms are out of pyro_flows' scope",
    "lower_cholesky_transform": "matrix transforms are out of pyro_flows' scope",
}


def _event_shapes(twin):
    """Pyro's two sizes, 2 and 5; an event of e dims is (n, n + 1, ..., n + e - 1)."""
    return [tuple(n + i for i in range(twin.event_dim)) for n in (2, 5)]


def _shape_id(shape):
    return "x".join(map(str, shape))


@dataclass
class Built:
    flow: object  # the flow holding the parameters
    transform: object  # what Pyro's checks see: the flow, or the flow bound to its context
    context: torch.Tensor | None


def build_twin(twin, shape, dtype=torch.float32) -> Built:
    """A fresh, randomized flow in ``dtype``; conditional flows are bound to ``z ~ U(0, 1)`` of shape
    ``(1, context_dim)``, as Pyro's ``_test_conditional`` does."""
    torch.manual_seed(123)  # Pyro's harness seed
    flow = twin.build(shape, CONTEXT_DIM if twin.conditional else None).to(dtype)
    randomize(flow, 0.3)
    if twin.prepare is not None:
        twin.prepare(flow)
    if not twin.conditional:
        return Built(flow, flow, None)
    z = torch.rand(1, CONTEXT_DIM, dtype=dtype)
    return Built(flow, flow.condition(z), z)


def fd_jacobian(f, x, eps):
    """Central finite differences of ``f`` at ``x`` (shape ``(1, *event)``): ``J[j, k] = d y_k / d x_j``, event
    dims flattened (Pyro's ``Flatten``). Every perturbation runs in one batch of ``2 n`` inputs."""
    n = x[0].numel()
    steps = (0.5 * eps * torch.eye(n, dtype=x.dtype)).reshape(n, *x.shape[1:])
    y = f(torch.cat([x + steps, x - steps]))
    return ((y[:n] - y[n:]) / eps).reshape(n, n)


def pyro_check_jacobian(twin, built, shape):
    """Pyro's ``_test_jacobian``: the log-det against ``log|det J|`` of a finite-difference Jacobian; for an
    autoregressive flow also against ``sum log|J_dd|``, and ``J`` triangular with a non-zero diagonal once its
    rows and columns follow the variable ordering. Float64 with a step of 1e-6 instead of Pyro's float32 and
    1e-4; Pyro's 1e-4 tolerance kept."""
    t = built.transform
    x = torch.randn(1, *shape, dtype=torch.float64)
    with torch.no_grad():
        y = t(x)
        analytic = t.log_abs_det_jacobian(x, y)
        jac = fd_jacobian(lambda v: t(v), x, 1e-6)
    assert analytic.shape == (1,)
    numeric = torch.linalg.slogdet(jac).logabsdet
    assert abs(analytic.item() - numeric.item()) < PYRO_EPS
    if twin.autoregressive:
        # in generation order: output k may depend on inputs of lower degree and on itself only
        degrees = built.flow.conditioner.degrees
        order = torch.argsort(degrees, stable=True)
        ordered = jac[order][:, order]
        nonzero = ordered.abs() > 1e-8  # structural zeros, up to the last bit of the two evaluations
        assert bool(nonzero.diagonal().all()), "an output does not depend on its own input"
        assert not bool(torch.tril(nonzero, diagonal=-1).any()), "an output depends on a later input"
        numeric_diag = ordered.diagonal().abs().log().sum()
        assert abs(analytic.item() - numeric_diag.item()) < PYRO_EPS


def pyro_check_inverse(built, shape):
    """Pyro's ``_test_inverse``: ``_inverse(_call(x)) = x`` through the cache-free methods, and the log-det
    at the recovered ``x`` equals the one at the true ``x``. Float64 with Pyro's tolerance 1e-6."""
    t = built.transform
    x_true = dist.Normal(torch.zeros(shape, dtype=torch.float64), 1.0).sample(torch.Size([10]))
    y = t._call(x_true)
    x_calc = t._inverse(y)
    assert t.bijective
    assert (x_true - x_calc).abs().max().item() < PYRO_DELTA
    j1 = t.log_abs_det_jacobian(x_true, y)
    j2 = t.log_abs_det_jacobian(x_calc, y)
    assert (j1 - j2).abs().max().item() < PYRO_DELTA


def pyro_check_shape(built, base_shape):
    """Pyro's ``_test_shape``: a sample of the transformed distribution has the base's shape, and
    ``forward_shape``/``inverse_shape`` map batch and event shapes as the domain and codomain say."""
    t = built.transform
    base = dist.Normal(torch.zeros(base_shape), torch.ones(base_shape))
    assert dist.TransformedDistribution(base, [t]).sample().shape == base_shape
    n = len(base_shape)
    batch = base_shape[: n - t.domain.event_dim]
    in_event = base_shape[n - t.domain.event_dim :]
    out_event = base_shape[n - t.codomain.event_dim :]
    assert t.forward_shape(in_event) == out_event
    assert t.forward_shape(base_shape) == batch + out_event
    assert t.inverse_shape(out_event) == in_event
    assert t.inverse_shape(batch + out_event) == base_shape


def pyro_check_autodiff(built, shape, direction):
    """Pyro's ``_test_autodiff``: three Adam steps of maximum likelihood on ``x ~ U(0, 1)`` run without error.
    Pyro uses ``t.inv`` in the distribution when its flow has no inverse; every pyro_flows flow has one, so
    both directions run. The optimizer gets the flow's parameters (Pyro hands a conditioned flow the
    conditional flow's parameters the same way)."""
    params = list(built.flow.parameters())
    if not params:
        pytest.skip("no parameters (Pyro runs this check only on TransformModules with parameters)")
    t = built.transform if direction == "density" else built.transform.inv
    d = dist.TransformedDistribution(dist.Normal(torch.zeros(shape), torch.ones(shape)).to_event(len(shape)), [t])
    opt = torch.optim.Adam(params)
    x = torch.rand(1, *shape)
    for _ in range(3):
        opt.zero_grad()
        loss = -d.log_prob(x.detach()).mean()
        assert torch.isfinite(loss)
        loss.backward()
        opt.step()


PYRO_CHECKS = ["inverse", "shape", "jacobian", "autodiff-density", "autodiff-sampling"]


def _pyro_params():
    for twin in TWINS:
        for shape in _event_shapes(twin):
            for check in PYRO_CHECKS:
                yield pytest.param(
                    twin, shape, check, id=f"{twin.pyro_test}->{twin.pf_name}-{_shape_id(shape)}-{check}"
                )


@pytest.mark.parametrize("twin,shape,check", list(_pyro_params()))
def test_pyro_harness(twin, shape, check):
    if check in ("inverse", "jacobian"):
        built = build_twin(twin, shape, torch.float64)
        if check == "inverse":
            pyro_check_inverse(built, shape)
        else:
            pyro_check_jacobian(twin, built, shape)
    elif check == "shape":
        built = build_twin(twin, shape)
        for batch in [(3,), (3, 4), (3, 4, 5)]:
            pyro_check_shape(built, batch + shape)
    else:
        pyro_check_autodiff(build_twin(twin, shape), shape, check.split("-")[1])


def _conditional_twin_params():
    for twin in TWINS:
        if twin.conditional:
            for shape in _event_shapes(twin):
                yield pytest.param(twin, shape, id=f"{twin.pyro_test}->{twin.pf_name}-{_shape_id(shape)}")


@pytest.mark.parametrize("twin,shape", list(_conditional_twin_params()))
def test_pyro_harness_conditioned_is_a_module(twin, shape):
    """Pyro's conditioned flows are TransformModules whose parameters are the conditional flow's (its harness
    patches ``.parameters`` only for the flows that are not); a pyro_flows bound view is one too."""
    built = build_twin(twin, shape)
    assert isinstance(built.transform, TransformModule)
    assert set(built.transform.parameters()) == set(built.flow.parameters()) != set()


@pytest.mark.parametrize("twin,shape", [p for p in _conditional_twin_params() if p.values[0].autoregressive])
def test_pyro_harness_context_reaches_every_output(twin, shape):
    """Pyro's conditional autoregressive network connects the context to every output (the ``correct``
    connection set of ``_test_masks`` in pyro's tests/nn/test_autoregressive.py starts with every context
    input), so every output of a conditional autoregressive flow depends on the context."""
    built = build_twin(twin, shape, torch.float64)
    x = torch.randn(*shape, dtype=torch.float64)
    # at contexts spread over every direction: a ReLU unit can be off at a point (or over the whole unit
    # cube the harness draws from), in Pyro's networks as in ours; the connection is what is tested
    reach = 0
    for z in 2 * torch.randn(16, built.context.shape[-1], dtype=torch.float64):
        jac = torch.autograd.functional.jacobian(lambda z: built.flow.condition(z)(x.clone()), z)
        reach = reach + jac.abs().sum(-1)
    blind = (reach == 0).nonzero().flatten().tolist()
    assert not blind, f"outputs {blind} do not depend on the context"


# --- test_generalized_channel_permute -> InvertibleConv1x1 ------------------------------------------------
GCP_SHAPES = [(3, 16, 16), (1, 3, 32, 32), (2, 5, 3, 64, 64)]


def _conv1x1(event_shape, lu, dtype=torch.float32):
    torch.manual_seed(123)
    weight = torch.linalg.qr(torch.randn(event_shape[0], event_shape[0]))[0] + 0.3 * torch.randn(
        event_shape[0], event_shape[0]
    )
    t = pf.InvertibleConv1x1(tuple(event_shape), lu=lu, weight=weight).to(dtype)
    return randomize(t, 0.1)


@pytest.mark.parametrize("lu", [True, False], ids=["lu", "plain"])
@pytest.mark.parametrize("shape", GCP_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("check", ["shape", "inverse"])
def test_pyro_generalized_channel_permute(shape, lu, check):
    """Pyro's ``test_generalized_channel_permute`` on ``pf.InvertibleConv1x1`` (the 1x1 convolution is the
    LU-parametrized channel mixing that Pyro's flow implements); the last three dims are the event."""
    if check == "shape":
        pyro_check_shape(Built(None, _conv1x1(shape[-3:], lu), None), shape)
    else:
        pyro_check_inverse(Built(None, _conv1x1(shape[-3:], lu, torch.float64), None), shape)


@pytest.mark.parametrize("lu", [True, False], ids=["lu", "plain"])
@pytest.mark.parametrize("width", [2, 4, 6])
def test_pyro_generalized_channel_permute_jacobian(width, lu):
    shape = (3, width, width)
    t = _conv1x1(shape, lu, torch.float64)
    pyro_check_jacobian(Twin("generalized_channel_permute", "InvertibleConv1x1", None, 3), Built(t, t, None), shape)


@pytest.mark.parametrize("pyro_test", sorted(NO_TWIN))
def test_pyro_harness_without_twin(pyro_test):
    pytest.skip(f"Pyro's test_{pyro_test}: {NO_TWIN[pyro_test]}")


# --- test_inverse_conditional_transform_module ------------------------------------------------------------
CONDITIONAL_FLOWS = {
    "Planar": lambda d, c: pf.Planar(d, context_dim=c, hidden_dims=(8,)),
    "Radial": lambda d, c: pf.Radial(d, context_dim=c, hidden_dims=(8,)),
    "AdditiveCoupling": lambda d, c: pf.AdditiveCoupling(d, context_dim=c, hidden_dims=(8,)),
    "AffineCoupling": lambda d, c: pf.AffineCoupling(d, context_dim=c, hidden_dims=(8,)),
    "Rescale": lambda d, c: pf.Rescale(d, context_dim=c, hidden_dims=(8,)),
    "MAF": lambda d, c: pf.MAF(d, (12,), context_dim=c),
    "IAF": lambda d, c: pf.IAF(d, (12,), context_dim=c),
    "realnvp": lambda d, c: pf.realnvp(d, num_layers=2, hidden_dims=(8,), context_dim=c),
}
BATCHES = [(), (7,), (6, 7)]


def _batch_id(batch):
    return "batch" + ("x".join(map(str, batch)) or "()")


@pytest.mark.parametrize("input_dim,context_dim", [(2, 5), (3, 3), (5, 2)], ids=lambda v: str(v))
@pytest.mark.parametrize("batch", BATCHES, ids=_batch_id)
@pytest.mark.parametrize("name", sorted(CONDITIONAL_FLOWS))
def test_pyro_inverse_conditional_transform_module(name, batch, input_dim, context_dim):
    """Pyro's ``test_inverse_conditional_transform_module``: conditioning commutes with inverting, and
    ``.inv.inv`` of the conditional flow is the flow itself."""
    torch.manual_seed(123)
    flow = randomize(CONDITIONAL_FLOWS[name](input_dim, context_dim), 0.3)
    noise = torch.rand(batch + (input_dim,))
    context = torch.rand(batch + (context_dim,))
    torch.testing.assert_close(flow.inv.condition(context)(noise), flow.condition(context).inv(noise))
    assert flow.inv.inv is flow
    torch.testing.assert_close(flow.inv.condition(context).inv(noise), flow.condition(context).inv.inv(noise))


# --- test_conditional_compose_transform_module ------------------------------------------------------------
def _compose_parts(input_dim, context_dim):
    """Pyro's mix: a constant affine map, an unconditional module, a conditional flow, a parameter-free
    transform and a second conditional flow (pyro_flows flows in place of Pyro's splines). Float64: the
    softplus inverse of a tiny float32 value that came back a rounding error below zero would be NaN."""
    return [
        AffineTransform(1.0, 2.0),
        randomize(pf.AffineCoupling(input_dim, hidden_dims=(5,)), 0.3).double(),
        randomize(pf.MAF(input_dim, (5,), context_dim=context_dim), 0.3).double(),
        SoftplusTransform(),
        randomize(pf.AffineCoupling(input_dim, hidden_dims=(6,), context_dim=context_dim), 0.3).double(),
    ]


COMPOSERS = {
    "pyro-ConditionalComposeTransformModule": lambda parts, cache_size: ConditionalComposeTransformModule(
        parts, cache_size=cache_size
    ),
    "pf.Compose": lambda parts, cache_size: pf.Compose(parts).with_cache(cache_size),
}


@pytest.mark.parametrize("cache_size", [0, 1], ids=["cache0", "cache1"])
@pytest.mark.parametrize("input_dim", [2, 5], ids=lambda d: f"D{d}")
@pytest.mark.parametrize("batch", BATCHES, ids=_batch_id)
@pytest.mark.parametrize("composer", sorted(COMPOSERS))
def test_pyro_conditional_compose_transform_module(composer, batch, input_dim, cache_size):
    """Pyro's ``test_conditional_compose_transform_module`` with pyro_flows parts, composed by Pyro's
    conditional compose and by ``pf.Compose``: conditioning gives a ``ComposeTransformModule``; sample and
    log-density shapes; the compose holds exactly its parts' parameters; its output is the parts applied in
    turn; both ways of inverting give back the noise."""
    torch.manual_seed(123)
    context_dim = 3
    parts = _compose_parts(input_dim, context_dim)
    cond = COMPOSERS[composer](parts, cache_size)
    zero = torch.zeros((), dtype=torch.float64)
    base = dist.Normal(zero, 1.0).expand(batch + (input_dim,)).to_event(1)
    context = torch.rand(batch + (context_dim,), dtype=torch.float64)
    d = ConditionalTransformedDistribution(base, [cond]).condition(context)
    transform = d.transforms[0]
    assert isinstance(transform, ComposeTransformModule)

    data = d.rsample()
    assert data.shape == batch + (input_dim,)
    assert d.log_prob(data).shape == batch

    expected_params = set(torch.nn.ModuleList([p for p in parts if isinstance(p, torch.nn.Module)]).parameters())
    assert set() != set(cond.parameters()) == expected_params

    noise = base.rsample()
    expected = noise
    for part in parts:
        expected = (part.condition(context) if hasattr(part, "condition") else part)(expected)
    actual = transform(noise)
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(cond.inv.condition(context)(actual), noise)
    torch.testing.assert_close(cond.condition(context).inv(expected), noise)


# =========================================================================================================
# Part B: torch's generic transform checks on every case of tests/cases.py
# =========================================================================================================
IDS = sorted(CASES)
DIRECTIONS = ["fwd", "inv"]  # torch checks every transform and its .inv
CACHES = [1, 0]  # ... each built with the cache on and with it off


def subject(case, direction="fwd", cache=1, dtype=None):
    """The transform torch's checks see: the case (bound to its context), ``with_cache(cache)``, then its
    ``.inv`` for the ``inv`` direction (torch's ``get_transforms(cache_size)`` followed by ``t.inv``)."""
    t, ctx = case.transform, case.context
    if dtype is not None:
        t = t.to(dtype)
        ctx = None if ctx is None else ctx.to(dtype)
    if ctx is not None:
        t = t.condition(ctx)
    t = t.with_cache(cache)
    return t.inv if direction == "inv" else t


def data_for(t, case, dtype=torch.float32):
    """torch's ``generate_data``: values of the case's batch shape drawn inside ``t.domain``."""
    c = t.domain
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    shape = case.x.shape
    if c is constraints.real:
        return torch.randn(shape, dtype=dtype)
    if c is constraints.unit_interval:
        return torch.rand(shape, dtype=dtype)
    if isinstance(c, constraints.interval):
        return torch.rand(shape, dtype=dtype) * (c.upper_bound - c.lower_bound) + c.lower_bound
    raise AssertionError(f"no sampler for the domain {c}")


def variant_id(direction, cache):
    return f"{direction}-cache{cache}"


VARIANTS = [pytest.param(d, c, id=variant_id(d, c)) for d in DIRECTIONS for c in CACHES]


@pytest.fixture(params=IDS)
def case(request):
    torch.manual_seed(1)
    c = CASES[request.param]()
    torch.manual_seed(1)  # torch's generate_data seed
    return c


@pytest.mark.parametrize("direction,cache", VARIANTS)
def test_torch_inv_inv(case, direction, cache):
    """torch's ``test_inv_inv``: inverting twice gives back the very same object."""
    t = subject(case, direction, cache)
    assert t.inv.inv is t


def test_torch_equality(case, request):
    """torch's ``test_equality``: a transform equals itself and differs from every other transform (here its
    inverse and the next case's transform)."""
    t = subject(case)
    name = request.node.callspec.params["case"]
    other = CASES[IDS[(IDS.index(name) + 1) % len(IDS)]]().transform
    assert t == t
    assert t.inv == t.inv
    assert t != t.inv
    assert t != other and other != t


@pytest.mark.parametrize("direction,cache", VARIANTS)
def test_torch_with_cache(case, direction, cache):
    """torch's ``test_with_cache``: ``with_cache(1)`` turns caching on, so a repeated call returns the very
    same output tensor."""
    t = subject(case, direction, cache)
    if t._cache_size == 0:
        t = t.with_cache(1)
    assert t._cache_size == 1
    x = data_for(t, case).requires_grad_()
    y = t(x)
    assert t(x) is y


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "clone"])
@pytest.mark.parametrize("direction,cache", VARIANTS)
def test_torch_forward_inverse(case, direction, cache, cached):
    """torch's ``test_forward_inverse``: shapes through ``forward_shape``/``inverse_shape`` and
    ``t.inv(t(x)) = x`` (atol 1e-4), with the cache allowed to answer and with it bypassed by ``y.clone()``.
    Also (this project's addition, which torch's data generation relies on) every output lies in
    ``t.codomain``. Float64: from the output side a randomized case can be steep (the forward Jacobian of
    planar-conditional reaches singular values near 1e4 at standard-normal points), where a float32 round
    trip legitimately loses 1e-2; test_contract.py checks float32 round trips on the cases' own inputs."""
    t = subject(case, direction, cache, torch.float64)
    x = data_for(t, case, torch.float64).requires_grad_()
    y = t(x)
    assert y.shape == t.forward_shape(x.shape)
    assert bool(t.codomain.check(y).all()), f"an output of {type(t).__name__} lies outside its codomain"
    x2 = t.inv(y) if cached else t.inv(y.clone())
    assert x2.shape == t.inverse_shape(y.shape)
    assert t.bijective
    assert torch.allclose(x2, x, atol=1e-4, equal_nan=True), f"max error {(x2 - x).abs().max():.3g}"


def test_torch_codomain_is_truthful_on_wide_inputs(case):
    """The codomain check above on inputs spread wider than a standard normal, in both directions (a
    bounded map such as a scaled sigmoid reaches its limits only there)."""
    for direction in DIRECTIONS:
        t = subject(case, direction)
        x = data_for(t, case)
        if t.domain.check(x * 8).all():
            x = x * 8
        with torch.no_grad():
            y = t(x)
        ok = torch.isfinite(y).all()
        if ok:
            assert bool(t.codomain.check(y).all()), f"{direction}: an output lies outside the declared codomain"


def test_torch_compose_event_dims(case):
    """torch's ``test_compose_transform_shapes``: the event_dim of a composition is the largest of its
    parts', here with an elementwise (event_dim 0) map on either side of the case and with its inverse."""
    t = subject(case)
    e = len(case.event_shape)
    assert t.event_dim == t.domain.event_dim == t.codomain.event_dim == e
    assert t.inv.event_dim == e
    scale = AffineTransform(0.0, 2.0)
    for chain in (ComposeTransform([scale, t]), ComposeTransform([t, scale]), ComposeTransform([t, t.inv])):
        assert chain.event_dim == chain.domain.event_dim == chain.codomain.event_dim == e


@pytest.mark.parametrize("with_elementwise", [False, True], ids=["alone", "after-elementwise"])
def test_torch_transformed_distribution_shapes(case, with_elementwise):
    """torch's ``test_transformed_distribution_shapes``: a base with batch shape (3, *event) and no event
    dims becomes batch (3,) and the case's event shape; rsample and log_prob run with those shapes."""
    t = case.transform
    if case.context is not None:
        t = t.condition(case.context[0])
    event = torch.Size(case.event_shape)
    base = torch.distributions.Normal(torch.zeros(3, *event), torch.ones(3, *event))
    transforms = ([AffineTransform(0.0, 0.5)] if with_elementwise else []) + [t]
    d = torch.distributions.TransformedDistribution(base, transforms)
    assert d.batch_shape == (3,) and d.event_shape == event
    x = d.rsample()
    assert x.shape == (3, *event)
    assert d.log_prob(x).shape == (3,)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_torch_jit(case, direction):
    """torch's ``test_jit_fwd``/``test_jit_inv``/``test_jit_jacobian``: a trace of the transform and its
    log-det taken on one input gives the eager results on another. torch's transforms hold constants, so the
    parameters are frozen (``requires_grad=False``) for the trace. torch traces the cache-free transforms;
    here the default cache stays on (the trace sees one call, so the cache changes nothing) so that this
    check does not depend on ``with_cache(0)``, which test_torch_with_cache covers."""
    for p in case.transform.parameters():
        p.requires_grad_(False)
    t = subject(case, direction)

    def f(x):
        y = t(x)
        return y, t.log_abs_det_jacobian(x, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about Python-side checks of the input
        traced = torch.jit.trace(f, (data_for(t, case).requires_grad_(),), check_trace=False)
    x = data_for(t, case).requires_grad_()
    for got, expected in zip(traced(x), f(x)):
        assert torch.allclose(got, expected, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("direction,cache", VARIANTS)
def test_torch_jacobian(case, direction, cache):
    """torch's ``test_jacobian``: the log-det has the batch shape, and equals ``slogdet`` of the diagonal
    blocks of the autograd Jacobian of the whole batch (batches must not mix: the off-diagonal blocks are
    zero). Float64 and the first two batch entries, to keep it fast."""
    if case.context is not None:  # bind the contexts of the two batch entries used
        case = type(case)(case.transform, case.x[:2], case.context[:2])
    t = subject(case, direction, cache, torch.float64)
    x = data_for(t, case, torch.float64)[:2]
    y = t(x)
    actual = t.log_abs_det_jacobian(x, y)
    assert actual.shape == x.shape[: x.dim() - t.domain.event_dim]
    n, k = x.shape[0], x[0].numel()
    jac = torch.autograd.functional.jacobian(lambda v: t(v.clone()), x.clone()).reshape(n, k, n, k)
    blocks = torch.stack([jac[i, :, i, :] for i in range(n)])
    others = jac.clone()
    for i in range(n):
        others[i, :, i, :] = 0
    assert bool((others == 0).all()), "one batch entry's output depends on another's input"
    expected = torch.linalg.slogdet(blocks).logabsdet
    assert torch.allclose(actual, expected, atol=1e-5), f"{actual} vs {expected}"
