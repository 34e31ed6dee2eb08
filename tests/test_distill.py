"""Probability density distillation: the per-step conditionals are exact (they reproduce both flows'
log-densities), every estimator agrees with the plain Monte Carlo KL in expectation and the per-step ones have a
lower variance, the Pyro (model, guide) pair's -ELBO is the KL and trains the student only, the collapse
monitor's rule, the power loss, and clear refusals."""

import math
import warnings

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

import pyro_flows as pf
from pyro_flows import ops
from pyro_flows.models import (
    DistillationLoss,
    DistillationMonitor,
    StudentCollapseWarning,
    distillation_loss,
    distillation_model_guide,
    power_loss,
    student_conditionals,
    teacher_conditionals,
)
from pyro_flows.nn import WaveNet

D, T = 4, 16
VECTOR, SEQUENCE = (D,), (1, T)


@pytest.fixture(autouse=True)
def seeded():
    pyro.clear_param_store()
    pyro.set_rng_seed(0)


def randomized(flow, seed, scale=0.3):
    """A new flow is the identity (zero-initialized heads): perturb every parameter, in float64."""
    flow = flow.double()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return flow


def wavenet(i, context_dim=None):
    return WaveNet(1, T, residual_channels=4, skip_channels=4, dilations=(1, 2), context_dim=context_dim)


def stack(kind, shape, *, context_dim=None, layers=2, seed=0, op=None):
    """Two affine autoregressive layers sharing one order: MADEs in natural order, or WaveNets over time."""
    layer = {"iaf": pf.IAF, "maf": pf.MAF}[kind]
    kw = {} if op is None else {"op": op}
    if shape == VECTOR:
        parts = [layer(D, (16,), ordering="natural", context_dim=context_dim, **kw) for _ in range(layers)]
    else:
        parts = [layer(conditioner=wavenet(i, context_dim), **kw) for i in range(layers)]
    # MADEs take a smaller perturbation: ReLU MADEs far apart make heavy-tailed log-density ratios, whose
    # sample variances are too noisy to compare
    return randomized(pf.Compose(parts), seed, 0.1 if shape == VECTOR else 0.3)


def base(family, shape, loc=0.0, scale=1.0):
    cls = {"normal": dist.Normal, "logistic": dist.Logistic}[family]
    ones = torch.ones(shape, dtype=torch.float64)
    return cls(loc * ones, scale * ones).to_event(len(shape))


def pair(shape, family="logistic", *, context_dim=None, teacher_family=None, student_op=None):
    student = stack("iaf", shape, context_dim=context_dim, seed=1, op=student_op)
    teacher = stack("maf", shape, context_dim=context_dim, seed=2)
    # a base with its own location and scale too, carried through the coefficients
    s = pf.flow_distribution(student, base=base(family, shape, 0.1, 0.8))
    t = pf.flow_distribution(teacher, base=base(teacher_family or family, shape, -0.2, 1.3))
    return s, t


SHAPES = pytest.mark.parametrize("shape", [VECTOR, SEQUENCE], ids=["made", "wavenet"])
FAMILIES = pytest.mark.parametrize("family", ["logistic", "normal"])


# --- the ops' coefficients -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "op",
    [ops.Affine(), ops.Affine("exp"), ops.Affine("sigmoid"), ops.GatedAffine(), ops.GatedAffine(2.0), ops.Additive()],
    ids=repr,
)
def test_coefficients_give_the_forward_map(op):
    x = torch.randn(5, 3, dtype=torch.float64)
    params = tuple(2 * torch.randn(5, 3, dtype=torch.float64) for _ in range(op.num_params))
    log_scale, shift = op.coefficients(params)
    y, ld = op.forward(x, params)
    torch.testing.assert_close(y, x * log_scale.exp() + shift)
    torch.testing.assert_close(log_scale, ld)


# --- the per-step conditionals are exact --------------------------------------------------------------------
@SHAPES
@FAMILIES
def test_the_conditionals_reproduce_both_log_densities(shape, family):
    s, t = pair(shape, family, student_op=ops.GatedAffine() if family == "normal" else None)
    pyro.set_rng_seed(3)
    c = student_conditionals(s, (6,))
    pyro.set_rng_seed(3)
    x = s.rsample((6,))
    torch.testing.assert_close(c.sample, x)  # the same draw as rsample
    dims = tuple(range(-len(shape), 0))
    torch.testing.assert_close(c.log_prob().sum(dims), s.log_prob(x))
    tc = teacher_conditionals(t, x)
    torch.testing.assert_close(tc.log_prob().sum(dims), t.log_prob(x))
    assert c.family == tc.family == family


def test_inverted_layers_of_the_right_direction_are_accepted():
    # Inverse(MAF) samples in one pass (IAF-type), Inverse(IAF) scores in one pass (MAF-type)
    s_flow = randomized(pf.Compose([pf.MAF(D, (16,), ordering="natural").inv for _ in range(2)]), 5)
    t_flow = randomized(pf.Compose([pf.IAF(D, (16,), ordering="natural") for _ in range(2)]), 6).inv
    s, t = pf.flow_distribution(s_flow), pf.flow_distribution(t_flow)
    c = student_conditionals(s, (5,))
    torch.testing.assert_close(c.log_prob().sum(-1), s.log_prob(c.sample.clone()))
    torch.testing.assert_close(teacher_conditionals(t, c.sample).log_prob().sum(-1), t.log_prob(c.sample))


def test_conditional_flows_take_the_context():
    s, t = pair(VECTOR, context_dim=3)
    context = torch.eye(3, dtype=torch.float64)
    c = student_conditionals(s, (2,), context=context)
    assert c.sample.shape == (2, 3, D)
    x = c.sample.detach()
    torch.testing.assert_close(c.log_prob().sum(-1), s.condition(context).log_prob(c.sample.clone()))
    tc = teacher_conditionals(t, x, context=context)
    torch.testing.assert_close(tc.log_prob().sum(-1), t.condition(context).log_prob(x))


# --- the estimators: unbiased, and the per-step ones with a lower variance ----------------------------------
def _agree(a, b, what, z=4.0):
    """The two estimates' means agree within ``z`` combined standard errors."""
    se = math.sqrt(a.var().item() / a.numel() + b.var().item() / b.numel())
    assert abs(a.mean().item() - b.mean().item()) < z * se + 1e-9, (what, a.mean().item(), b.mean().item(), se)


def _per_sample(s, t, estimator, n, **kw):
    out = distillation_loss(s, t, num_samples=n, estimator=estimator, **kw)
    assert out.kl_samples.shape == (n,)
    torch.testing.assert_close(out.kl, out.cross_entropy - out.entropy)
    return out


@SHAPES
@pytest.mark.parametrize(
    "family,estimator",
    [("logistic", "per_step"), ("normal", "per_step"), ("normal", "closed_form")],
    ids=["logistic-per_step", "normal-per_step", "normal-closed_form"],
)
def test_each_estimator_is_the_monte_carlo_kl_in_expectation_with_less_variance(shape, family, estimator):
    s, t = pair(shape, family)
    n = 1500
    with torch.no_grad():
        mc = _per_sample(s, t, "monte_carlo", n)
        state = torch.get_rng_state()
        step = _per_sample(s, t, estimator, n, num_draws=8)
        torch.set_rng_state(state)
        c = student_conditionals(s, (n,))  # the same student draw as the estimator's
        mc_entropy = -s.log_prob(mc.sample)
    _agree(mc.kl_samples, step.kl_samples, "kl")
    assert mc.kl.item() > 0.05, "the pair must differ for the test to mean something"
    # the per-step entropy is the Monte Carlo entropy in expectation: compare per-sample values
    step_entropy = (c.log_scale + {"normal": 0.5 * math.log(2 * math.pi * math.e), "logistic": 2.0}[family]).flatten(1)
    step_entropy = step_entropy.sum(-1)
    torch.testing.assert_close(step.entropy, step_entropy.mean())
    _agree(mc_entropy, step_entropy, "entropy")
    ratio = step.kl_samples.var().item() / mc.kl_samples.var().item()
    print(f"variance ratio {estimator}/monte_carlo, {family}, event {shape}: {ratio:.3f}")
    assert ratio < 0.8


def test_the_per_step_entropy_and_cross_entropy_match_separately():
    s, t = pair(SEQUENCE, "logistic")
    with torch.no_grad():
        a = [distillation_loss(s, t, num_samples=400, estimator=e) for e in ("monte_carlo", "per_step")]
    # entropies per sample: exact per step (no noise from x_t) vs -log p_S(x)
    h_mc = -s.log_prob(a[0].sample)
    with torch.no_grad():
        c = student_conditionals(s, (400,))
    h_step = (c.log_scale + 2.0).sum((-2, -1))
    _agree(h_mc, h_step, "entropy")
    assert h_step.var() < h_mc.var()
    assert abs(a[0].cross_entropy.item() - a[1].cross_entropy.item()) < 1.0


def test_the_regularizer_is_clarinets():
    s, t = pair(VECTOR, "normal")
    pyro.set_rng_seed(4)
    out = distillation_loss(s, t, num_samples=3, estimator="closed_form", regularizer=4.0)
    pyro.set_rng_seed(4)
    c = student_conditionals(s, (3,))
    tc = teacher_conditionals(t, c.sample)
    expected = 4.0 * ((c.log_scale - tc.log_scale) ** 2).sum(-1).mean()
    torch.testing.assert_close(out.regularizer, expected)
    torch.testing.assert_close(out.loss, out.kl + out.regularizer)
    # closed form: the exact Gaussian KL per step at this sample
    pyro.set_rng_seed(4)
    plain = distillation_loss(s, t, num_samples=3, estimator="closed_form")
    torch.testing.assert_close(plain.loss, plain.kl)
    torch.testing.assert_close(plain.kl, out.kl)


def test_gradients_reach_the_student_only_when_the_teacher_is_frozen():
    s, t = pair(SEQUENCE, "logistic")
    t.transforms[0].requires_grad_(False)
    out = distillation_loss(s, t, num_samples=4, estimator="per_step")
    out.loss.backward()
    grads = [p.grad for p in s.transforms[0].parameters()]
    assert all(g is not None for g in grads) and any(bool(g.abs().sum() > 0) for g in grads)
    assert all(p.grad is None for p in t.transforms[0].parameters())
    assert out.standard_error.item() > 0


def test_a_few_steps_of_training_reduce_the_kl():
    s, t = pair(VECTOR, "normal")
    t.transforms[0].requires_grad_(False)
    opt = torch.optim.Adam(s.transforms[0].parameters(), lr=3e-2)
    with torch.no_grad():
        before = distillation_loss(s, t, num_samples=2000, estimator="closed_form").kl.item()
    for _ in range(40):
        opt.zero_grad()
        distillation_loss(s, t, num_samples=64, estimator="closed_form").loss.backward()
        opt.step()
    with torch.no_grad():
        after = distillation_loss(s, t, num_samples=2000, estimator="closed_form").kl.item()
    assert after < 0.7 * before, (before, after)


# --- Pyro ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conditional", [False, True], ids=["unconditional", "one-hot-context"])
def test_the_negative_elbo_is_the_monte_carlo_kl(conditional):
    s, t = pair(VECTOR, "logistic", context_dim=3 if conditional else None)
    context = torch.eye(3, dtype=torch.float64) if conditional else None
    model, guide = distillation_model_guide(s, t)
    for seed in range(3):  # the same draws: the same number
        pyro.set_rng_seed(seed)
        elbo_loss = Trace_ELBO().loss(model, guide, context)
        pyro.set_rng_seed(seed)
        with torch.no_grad():
            kl = distillation_loss(s, t, num_samples=1, context=context).kl.item()
        assert elbo_loss == pytest.approx(kl, rel=1e-9, abs=1e-9)
    # and in expectation, over many particles
    pyro.set_rng_seed(7)
    elbo = Trace_ELBO(num_particles=400, vectorize_particles=True, max_plate_nesting=0)
    many = elbo.loss(model, guide, context)
    with torch.no_grad():
        ref = distillation_loss(s, t, num_samples=1500, context=context, estimator="per_step")
        spread = distillation_loss(s, t, num_samples=1500, context=context).kl_samples  # Monte Carlo, per sample
    particles = 400 * (3 if conditional else 1)
    assert abs(many - ref.kl.item()) < 4 * math.sqrt(ref.standard_error.item() ** 2 + spread.var().item() / particles)


def test_an_svi_step_trains_the_student_and_leaves_the_teacher():
    s, t = pair(SEQUENCE, "logistic", context_dim=3)
    context = torch.eye(3, dtype=torch.float64)
    model, guide = distillation_model_guide(s, t)
    assert not any(p.requires_grad for p in t.transforms[0].parameters())  # frozen (documented)
    teacher_before = [p.detach().clone() for p in t.transforms[0].parameters()]
    student_before = [p.detach().clone() for p in s.transforms[0].parameters()]
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    loss = svi.step(context)
    assert math.isfinite(loss)
    assert all(torch.equal(a, b) for a, b in zip(teacher_before, t.transforms[0].parameters(), strict=True))
    changed = [not torch.equal(a, b) for a, b in zip(student_before, s.transforms[0].parameters(), strict=True)]
    assert all(changed)
    store = list(pyro.get_param_store().keys())
    assert store and all(k.startswith("distill.student") for k in store)


def test_without_freezing_svi_still_leaves_the_teacher():
    s, t = pair(VECTOR, "logistic")
    model, guide = distillation_model_guide(s, t, freeze_teacher=False)
    before = [p.detach().clone() for p in t.transforms[0].parameters()]
    SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO()).step()
    assert all(torch.equal(a, b) for a, b in zip(before, t.transforms[0].parameters(), strict=True))


# --- refusals -------------------------------------------------------------------------------------------------
class Cubic:
    """A non-affine elementwise op (y = x + x^3 / 3 + t): no coefficients."""

    num_params, zero_is_identity = 2, False

    def forward(self, x, params):
        return x + x**3 / 3 + params[0], torch.log1p(x * x)

    def inverse(self, y, params):
        raise NotImplementedError


def test_refusals_name_the_part():
    s, t = pair(VECTOR)
    normal = base("normal", VECTOR)
    maf_student = pf.flow_distribution(stack("maf", VECTOR), base=normal)
    with pytest.raises(ValueError, match=r"student part \[0\]\.parts\[0\] \(MAF\) samples sequentially"):
        distillation_loss(maf_student, t, estimator="per_step")
    iaf_teacher = pf.flow_distribution(stack("iaf", VECTOR), base=normal)
    with pytest.raises(ValueError, match=r"teacher part \[0\]\.parts\[0\] \(IAF\) scores sequentially"):
        distillation_loss(s, iaf_teacher, estimator="per_step")
    permuted = pf.flow_distribution(pf.Compose([pf.IAF(D, (8,), ordering="natural"), pf.Reverse(D)]).double())
    with pytest.raises(TypeError, match=r"student part \[0\]\.parts\[1\] \(Reverse\) is not an affine autoregressive"):
        distillation_loss(permuted, t, estimator="per_step")
    mixed = pf.flow_distribution(pf.iaf(D, num_layers=2, hidden_dims=(8,)).double())  # alternating orders
    with pytest.raises(ValueError, match=r"parts\[1\] \(IAF\) orders the entries differently"):
        distillation_loss(mixed, t, estimator="per_step")
    reversed_teacher = pf.flow_distribution(pf.Compose([pf.MAF(D, (8,), ordering="reversed")]).double())
    with pytest.raises(ValueError, match=r"teacher part .*orders the entries differently"):
        distillation_loss(s, reversed_teacher, estimator="per_step")
    cubic = pf.flow_distribution(pf.Compose([pf.IAF(D, (8,), ordering="natural", op=Cubic())]).double())
    with pytest.raises(TypeError, match=r"student part \[0\]\.parts\[0\] \(IAF\): its op .* is not affine"):
        distillation_loss(cubic, t, estimator="per_step")
    student_t = pf.flow_distribution(
        s.transforms[0], base=dist.StudentT(3.0, torch.zeros(D).double(), torch.ones(D).double()).to_event(1)
    )
    with pytest.raises(TypeError, match="Normal or Logistic.*StudentT"):
        distillation_loss(student_t, t, estimator="per_step")
    with pytest.raises(ValueError, match="both bases must be Normal"):
        distillation_loss(s, t, estimator="closed_form")
    with pytest.raises(ValueError, match="regularizer= needs"):
        distillation_loss(s, t, regularizer=1.0)
    with pytest.raises(ValueError, match="estimator must be one of"):
        distillation_loss(s, t, estimator="mc")
    with pytest.raises(ValueError, match="neither the student nor the teacher is conditional"):
        distillation_loss(s, t, context=torch.zeros(3))
    cs, ct = pair(VECTOR, context_dim=3)
    with pytest.raises(ValueError, match="student is conditional and needs a context"):
        distillation_loss(cs, ct)
    with pytest.raises(TypeError, match="flow distribution"):
        distillation_loss(s.transforms[0], t)


def test_plain_monte_carlo_takes_any_flows():
    # a non-autoregressive student and teacher: the Monte Carlo estimator only needs rsample and log_prob
    s = pf.flow_distribution(pf.realnvp(2, num_layers=2, hidden_dims=(8,)))
    t = pf.flow_distribution(pf.planar(2, num_layers=2))
    out = distillation_loss(s, t, num_samples=5)
    assert isinstance(out, DistillationLoss) and out.estimator == "monte_carlo"
    assert out.sample.shape == (5, 2) and out.regularizer.item() == 0


# --- the collapse monitor -------------------------------------------------------------------------------------
def test_the_monitor_warns_when_entropy_falls_and_the_kl_stalls():
    monitor = DistillationMonitor(window=5, entropy_drop=1.0, kl_improvement=0.2)
    with pytest.warns(StudentCollapseWarning, match="entropy fell by"):
        flags = [monitor.record(kl=2.0 + 0.01 * (i % 2), entropy=10.0 - 0.3 * i) for i in range(20)]
    assert not any(flags[:9]) and all(flags[10:])
    assert monitor.collapse_steps == [monitor.collapse_steps[0]] and 9 <= monitor.collapse_steps[0] < 12
    drop, gain = monitor.changes()
    assert drop == pytest.approx(1.5) and abs(gain) < 0.2
    assert len(monitor.history["kl"]) == 20
    assert monitor.history["cross_entropy"][3] == pytest.approx(
        monitor.history["kl"][3] + monitor.history["entropy"][3]
    )


def test_the_monitor_is_quiet_while_the_kl_improves():
    monitor = DistillationMonitor(window=5, entropy_drop=1.0, kl_improvement=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flags = [monitor.record(kl=5.0 - 0.3 * i, entropy=10.0 - 0.3 * i) for i in range(30)]
    assert not any(flags) and monitor.collapse_steps == []


def test_the_monitor_warns_again_after_recovering_and_takes_results():
    monitor = DistillationMonitor(window=2, entropy_drop=1.0, kl_improvement=0.1, warn=False)
    h = [5, 5, 3, 3, 3, 3, 1, 1]
    flags = [monitor.record(kl=1.0, entropy=v) for v in h]
    assert flags == [False, False, False, True, False, False, False, True]
    assert monitor.collapse_steps == [3, 7]
    s, t = pair(VECTOR)
    monitor.record(distillation_loss(s, t, num_samples=2))
    assert len(monitor.history["entropy"]) == 9
    with pytest.raises(ValueError, match="not both"):
        monitor.record(distillation_loss(s, t), kl=1.0)
    with pytest.raises(ValueError, match="both kl= and entropy="):
        monitor.record(kl=1.0)


# --- the power loss -------------------------------------------------------------------------------------------
def test_the_power_loss_compares_time_averaged_power_spectra():
    x = torch.randn(3, 1, 128, dtype=torch.float64)
    y = torch.randn(3, 1, 128, dtype=torch.float64)
    assert power_loss(x, x, 32).item() == 0
    window = torch.hann_window(32, dtype=torch.float64)

    def phi(v):
        return (
            torch.stft(v.reshape(-1, 128), 32, 8, window=window, center=False, return_complex=True)
            .abs()
            .pow(2)
            .mean(-1)
        )

    expected = (phi(x).mean(0) - phi(y).mean(0)).pow(2).mean()
    torch.testing.assert_close(power_loss(x, y, 32, 8), expected)
    paired = (phi(x) - phi(y)).pow(2).mean()
    torch.testing.assert_close(power_loss(x, y, n_fft=32, hop=8, paired=True), paired)
    # the batch mean's distance is at most the mean distance (Jensen)
    assert power_loss(x, y, 32, 8) <= power_loss(x, y, 32, 8, paired=True)
    x.requires_grad_(True)
    power_loss(x, y, 32).backward()
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)
    with pytest.raises(ValueError, match="T >= n_fft"):
        power_loss(x[..., :16], y, 32)
    with pytest.raises(ValueError, match="shapes must match"):
        power_loss(x, y[:2], 32, paired=True)


def test_the_pyro_pair_takes_the_context_by_keyword_and_positionally():
    import pyro
    from pyro.infer import Trace_ELBO

    from pyro_flows.models import distillation_model_guide

    torch.manual_seed(0)
    base = dist.Logistic(torch.zeros(3), torch.ones(3)).to_event(1)
    student = pf.flow_distribution(pf.Compose([pf.IAF(3, (8,), ordering="natural", context_dim=2)]), base=base)
    teacher = pf.flow_distribution(pf.Compose([pf.MAF(3, (8,), ordering="natural", context_dim=2)]), base=base)
    model, guide = distillation_model_guide(student, teacher)
    c = torch.randn(4, 2)
    pyro.clear_param_store()
    for call in (lambda: Trace_ELBO().loss(model, guide, c), lambda: Trace_ELBO().loss(model, guide, ctx=c)):
        assert math.isfinite(call())


def test_a_logistic_student_never_draws_an_infinite_value(monkeypatch):
    # a uniform draw of exactly 0 (Pyro's Logistic.rsample would return -inf) gives a finite per-step sample
    base = dist.Logistic(torch.zeros(3), torch.ones(3)).to_event(1)
    student = pf.flow_distribution(pf.Compose([pf.IAF(3, (8,), ordering="natural")]), base=base)
    teacher = pf.flow_distribution(pf.Compose([pf.MAF(3, (8,), ordering="natural")]), base=base)
    real_rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **k: real_rand(*a, **k) * 0)
    out = distillation_loss(student, teacher, num_samples=2, estimator="per_step")
    assert bool(torch.isfinite(out.sample).all()) and math.isfinite(out.kl.item())
