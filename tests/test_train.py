"""Tests of pyro_flows.train: fit() and nll()."""

import json
import math
import warnings

import pyro.distributions as dist
import pytest
import torch
from pyro.distributions.torch_transform import TransformModule
from pyro.distributions.transforms import BatchNorm, Permute, affine_coupling
from torch.distributions import constraints

import pyro_flows as pf
from pyro_flows import data, flow_distribution
from pyro_flows.flows import realnvp
from pyro_flows.train import FitResult, History, TrainingDiverged, fit, nll


class Scale(TransformModule):
    """``y = s * x`` with log-det ``sum(log s)``: NaN once ``s`` turns negative (on purpose)."""

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, dim, init=1.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.full((dim,), float(init)))

    def _call(self, x):
        return x * self.scale

    def _inverse(self, y):
        return y / self.scale

    def log_abs_det_jacobian(self, x, y):
        return torch.log(self.scale).sum(-1).expand(x.shape[:-1])


def standard_normal(dim, dtype=torch.float32):
    return dist.Normal(torch.zeros(dim, dtype=dtype), torch.ones(dim, dtype=dtype)).to_event(1)


def scaled(dim=2, init=1.0):
    scale = Scale(dim, init)
    return dist.TransformedDistribution(standard_normal(dim), [scale]), scale


def normal_data(n, std, *, seed=0, dim=2):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator) * std


@pytest.fixture
def one_thread():
    """One torch thread for the test: small matrix products on a busy 2-core machine are
    many times slower with two threads that spin-wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- nll


def test_nll_matches_the_closed_form_and_is_independent_of_batching():
    d, _ = scaled(init=2.0)
    x = normal_data(100, 1.0)
    expected = -torch.distributions.Normal(0.0, 2.0).log_prob(x).sum(-1).mean().item()
    assert nll(d, x) == pytest.approx(expected, rel=1e-5)
    assert nll(d, x, batch_size=7) == pytest.approx(expected, rel=1e-5)


def test_nll_uses_eval_mode_and_restores_the_modes():
    torch.manual_seed(0)
    norm = BatchNorm(2)
    d = dist.TransformedDistribution(standard_normal(2), [norm])
    x = normal_data(64, 3.0) + 5.0
    norm.train()
    value = nll(d, x)
    assert norm.training  # restored
    norm.eval()
    assert nll(d, x) == pytest.approx(value)  # eval mode: running statistics, not batch ones


def test_nll_rejects_bad_input():
    d, _ = scaled()
    with pytest.raises(ValueError, match=r"data must have shape \(N, 2\).*got \(10, 3\)"):
        nll(d, torch.zeros(10, 3))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        nll(d, torch.zeros(10, 2), batch_size=0)
    with pytest.raises(TypeError, match="TransformedDistribution"):
        nll(standard_normal(2), torch.zeros(10, 2))


# --------------------------------------------------------------------------- fit


def test_fit_reduces_the_nll_of_a_realnvp_on_moons(one_thread):
    torch.manual_seed(0)
    split = data.load("moons", n_train=512, n_valid=256, n_test=256, seed=0)
    d = flow_distribution(realnvp(2, num_layers=4, hidden_dims=(32, 32)))
    before = nll(d, split.test)
    result = fit(d, split.train, split.valid, steps=200, batch_size=128, lr=3e-3, eval_every=50, progress=False, seed=0)
    assert isinstance(result, FitResult)
    assert result.steps_run == 200 and not result.stopped_early
    assert nll(d, split.test) < before - 0.3
    assert result.best_valid == pytest.approx(nll(d, split.valid), rel=1e-5)
    assert result.wall_time > 0


def test_fit_with_pyro_builtin_transforms(one_thread):
    torch.manual_seed(0)
    x = normal_data(256, 0.5) + 1.0
    flip = Permute(torch.tensor([1, 0]))  # not a module: looked through
    parts = [affine_coupling(2, hidden_dims=[16]), flip, affine_coupling(2, hidden_dims=[16])]
    d = dist.TransformedDistribution(standard_normal(2), parts)
    before = nll(d, x)
    fit(d, x, x, steps=100, batch_size=64, lr=1e-2, eval_every=20, progress=False, seed=0)
    assert nll(d, x) < before - 1.0


def test_fit_keeps_the_best_parameters_and_stops_early():
    # training pulls the scale towards 3 while validation prefers 1: validation only gets worse
    d, scale = scaled(init=1.0)
    train, valid = normal_data(512, 3.0, seed=0), normal_data(512, 1.0, seed=1)
    result = fit(d, train, valid, steps=1000, batch_size=64, lr=0.05, eval_every=5, patience=3, progress=False, seed=0)
    assert result.stopped_early
    assert result.steps_run == 20
    assert result.best_step == 5
    assert result.history.step == [5, 10, 15, 20]
    assert result.best_valid == min(result.history.valid_nll)
    assert nll(d, valid) == pytest.approx(result.best_valid, rel=1e-6)  # restored
    assert 1.0 < scale.scale.min().item() < 1.5  # the step-5 value, not the step-20 one


def test_fit_without_validation_keeps_the_last_parameters():
    d, scale = scaled(init=1.0)
    result = fit(d, normal_data(256, 3.0), steps=30, batch_size=64, lr=0.05, eval_every=10, progress=False, seed=0)
    assert result.best_valid is None
    assert result.best_step == 30 and result.steps_run == 30 and not result.stopped_early
    assert result.history.step == [10, 20, 30]
    assert result.history.valid_nll == [None, None, None]
    assert scale.scale.min().item() > 2.0


def test_fit_history_is_json_serializable():
    d, _ = scaled()
    x = normal_data(64, 2.0)
    result = fit(d, x, x, steps=7, batch_size=16, eval_every=3, progress=True, seed=0)
    assert result.history.step == [3, 6, 7]
    payload = json.loads(json.dumps(result.as_dict()))
    assert set(payload) == {"history", "best_valid", "best_step", "steps_run", "wall_time", "stopped_early"}
    assert set(payload["history"]) == {"step", "train_nll", "valid_nll"}


def test_fit_is_reproducible_with_a_seed():
    histories = []
    for _ in range(2):
        d, _ = scaled()
        x = normal_data(300, 2.0)
        histories.append(fit(d, x, x, steps=20, batch_size=32, eval_every=5, progress=False, seed=7).history)
    assert histories[0] == histories[1]


def test_fit_leaves_modules_in_eval_mode_and_trains_batch_norm_statistics():
    torch.manual_seed(0)
    norm = BatchNorm(2)
    coupling = affine_coupling(2, hidden_dims=[8])
    d = dist.TransformedDistribution(standard_normal(2), [coupling, norm])
    x = normal_data(256, 3.0) + 5.0
    fit(d, x, x, steps=20, batch_size=64, eval_every=10, progress=False, seed=0)
    assert not norm.training and not coupling.training
    assert not any(m.training for m in norm.modules())
    assert (norm.moving_mean != 0).any()  # running statistics were updated in train mode


def test_fit_counts_a_shared_module_once():
    torch.manual_seed(0)
    coupling = affine_coupling(2, hidden_dims=[8])
    d = dist.TransformedDistribution(standard_normal(2), [coupling, coupling.inv, coupling])
    x = normal_data(64, 1.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*duplicate parameters.*")
        fit(d, x, steps=2, batch_size=32, progress=False, seed=0)


def test_divergence_raises_and_restores_the_initial_parameters():
    # Adam's first step moves the scale by about lr = 10 towards smaller values: 1 -> -9,
    # and the log-det log(-9) is NaN at step 2
    d, scale = scaled(init=1.0)
    x = normal_data(128, 0.01)
    with pytest.raises(TrainingDiverged) as info:
        fit(d, x, steps=50, batch_size=32, lr=10.0, eval_every=10, progress=False, seed=0)
    error = info.value
    assert isinstance(error, FloatingPointError)
    message = str(error)
    assert "at step 2" in message
    assert "training loss is nan" in message
    assert "restored" in message and "initial parameters" in message
    assert "lower learning rate (lr=10)" in message
    assert error.step == 2
    assert error.last_finite_loss is not None and math.isfinite(error.last_finite_loss)
    assert f"{error.last_finite_loss:.6g}" in message
    assert isinstance(error.history, History)
    assert torch.equal(scale.scale, torch.ones(2))  # the initial parameters are back
    assert not scale.training


def test_divergence_in_validation_restores_the_best_parameters():
    # lr 0.3 shrinks the scale by about 0.3 a step: 1 -> 0.7 -> 0.4 -> 0.1 -> negative
    d, scale = scaled(init=1.0)
    x = normal_data(128, 0.01)
    with pytest.raises(TrainingDiverged, match="validation NLL is nan") as info:
        fit(d, x, x, steps=50, batch_size=32, lr=0.3, eval_every=1, progress=False, seed=0)
    error = info.value
    best = min(error.history.valid_nll)
    assert error.history.step == list(range(1, error.step))
    assert nll(d, x) == pytest.approx(best, rel=1e-6)
    assert scale.scale.min().item() > 0
    assert f"from step {error.history.step[-1]}" in str(error)


class SqrtScale(Scale):
    """A Scale whose inverse goes through ``sqrt(s)``: NaN values once ``s`` turns negative."""

    def _inverse(self, y):
        return y / self.scale.sqrt() ** 2


class Broken(Scale):
    def _inverse(self, y):
        raise ValueError("broken inverse")


def test_a_value_error_from_nan_values_after_an_update_is_a_divergence():
    scale = SqrtScale(2)
    base = dist.Normal(torch.zeros(2), torch.ones(2), validate_args=True).to_event(1)
    d = dist.TransformedDistribution(base, [scale])
    with pytest.raises(TrainingDiverged, match="could not be computed \\(ValueError: ") as info:
        fit(d, normal_data(128, 0.01), steps=50, batch_size=32, lr=10.0, progress=False, seed=0)
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.step == 2
    assert torch.equal(scale.scale, torch.ones(2))


def test_a_value_error_at_the_first_step_is_not_a_divergence():
    d = dist.TransformedDistribution(standard_normal(2), [Broken(2)])
    with pytest.raises(ValueError, match="broken inverse") as info:
        fit(d, normal_data(64, 1.0), steps=5, batch_size=32, progress=False)
    assert not isinstance(info.value, TrainingDiverged)


class Interrupting(Scale):
    """A Scale whose training step number ``at`` raises KeyboardInterrupt, like Ctrl-C."""

    def __init__(self, dim, *, at):
        super().__init__(dim)
        self.at = at
        self.training_calls = 0

    def log_abs_det_jacobian(self, x, y):
        if self.training:
            self.training_calls += 1
            if self.training_calls == self.at:
                raise KeyboardInterrupt
        return super().log_abs_det_jacobian(x, y)


def test_interrupt_restores_the_best_parameters():
    scale = Interrupting(2, at=25)
    d = dist.TransformedDistribution(standard_normal(2), [scale])
    train, valid = normal_data(512, 3.0, seed=0), normal_data(512, 1.0, seed=1)
    with pytest.raises(KeyboardInterrupt):
        fit(d, train, valid, steps=100, batch_size=64, lr=0.05, eval_every=10, progress=False, seed=0)
    assert not scale.training
    # validation gets worse as the scale grows, so the step-10 parameters are the best
    assert 1.0 < scale.scale.min().item() < 1.7
    reference = Scale(2)
    fit(
        dist.TransformedDistribution(standard_normal(2), [reference]),
        train,
        valid,
        steps=10,
        batch_size=64,
        lr=0.05,
        eval_every=10,
        progress=False,
        seed=0,
    )
    assert torch.equal(scale.scale, reference.scale)


@pytest.mark.parametrize(
    "train, message",
    [
        (
            torch.zeros(10, 3),
            r"train must have shape \(N, 2\) to match the distribution's "
            r"event shape \(2,\), got \(10, 3\)",
        ),
        (torch.zeros(2), r"train must have shape \(N, 2\).*got \(2,\)"),
        (torch.zeros(4, 1, 2), r"got \(4, 1, 2\)"),
        (torch.zeros(0, 2), "train is empty"),
        (torch.zeros(10, 2, dtype=torch.long), "train must be a floating-point tensor"),
        (torch.zeros(10, 2, dtype=torch.float64), "train has dtype torch.float64 but the flow"),
        (torch.full((10, 2), float("nan")), r"train must be finite, but rows \[0, 1, 2"),
        ([[0.0, 0.0]], "train must be a tensor of shape"),
    ],
)
def test_fit_rejects_bad_data(train, message):
    d, _ = scaled()
    with pytest.raises(ValueError, match=message):
        fit(d, train, progress=False)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"steps": 0}, "steps must be a positive int, got 0"),
        ({"steps": 10.0}, "steps must be a positive int"),
        ({"batch_size": -1}, "batch_size must be a positive int"),
        ({"eval_every": 0}, "eval_every must be a positive int"),
        ({"patience": 0}, "patience must be a positive int"),
        ({"lr": 0.0}, "lr must be a positive finite number"),
        ({"lr": float("inf")}, "lr must be a positive finite number"),
        ({"weight_decay": -1.0}, "weight_decay must be a finite number >= 0"),
        ({"clip_grad": 0.0}, "clip_grad must be a positive finite number or None"),
        ({"seed": -2}, "seed must be a non-negative int"),
    ],
)
def test_fit_rejects_bad_options(options, message):
    d, _ = scaled()
    with pytest.raises(ValueError, match=message):
        fit(d, torch.zeros(10, 2), progress=False, **options)


def test_fit_rejects_bad_validation_data():
    d, _ = scaled()
    with pytest.raises(ValueError, match=r"valid must have shape \(N, 2\).*got \(5, 4\)"):
        fit(d, torch.zeros(10, 2), torch.zeros(5, 4), progress=False)


def test_fit_rejects_other_distributions_and_parameterless_flows():
    with pytest.raises(TypeError, match="must be a pyro.distributions.TransformedDistribution or"):
        fit(standard_normal(2), torch.zeros(10, 2), progress=False)
    with pytest.raises(TypeError, match="got Scale"):
        fit(Scale(2), torch.zeros(10, 2), progress=False)
    fixed = dist.TransformedDistribution(standard_normal(2), [])
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(fixed, torch.zeros(10, 2), progress=False)


def test_fit_with_gradient_clipping_and_weight_decay_runs():
    d, scale = scaled()
    x = normal_data(64, 2.0)
    result = fit(
        d, x, x, steps=10, batch_size=16, clip_grad=1.0, weight_decay=1e-4, eval_every=5, progress=False, seed=0
    )
    assert result.steps_run == 10
    assert torch.isfinite(scale.scale).all()


def test_fit_preprocess_sees_every_raw_minibatch():
    # Raw integer "pixels" in, fresh dequantization noise per step: every batch the loss sees is new.
    pixels = torch.randint(0, 4, (64, 2), generator=torch.Generator().manual_seed(0))
    seen = []

    def dequantize(batch):
        x = data.dequantize(batch, levels=4)
        seen.append(x)
        return x

    d = flow_distribution(realnvp(2, num_layers=2, hidden_dims=(8,)))
    result = fit(d, pixels, steps=6, batch_size=64, eval_every=3, progress=False, seed=0, preprocess=dequantize)
    assert result.steps_run == 6
    assert len(seen) == 1 + 6  # one shape/dtype check, then one call per step
    assert not torch.equal(seen[1], seen[2])
    for x in seen[1:]:  # one batch = all rows (shuffled), each in its pixel's cell
        assert (x * 4).floor().sum() == pixels.sum()
    with pytest.raises(ValueError, match=r"preprocess\(train\) must be a floating-point tensor"):
        fit(d, pixels, steps=1, progress=False, preprocess=lambda b: b)


def test_fit_stops_at_its_time_budget():
    d = flow_distribution(realnvp(2, num_layers=2, hidden_dims=(8,)))
    x = data.load("moons", n_train=256, n_valid=64, n_test=64)
    result = fit(d, x.train, x.valid, steps=None, eval_every=10**5, max_seconds=0.2, progress=False, seed=0)
    assert result.stopped_early and result.steps_run >= 1
    assert result.history.step[-1] == result.steps_run  # a final evaluation at the stop
    with pytest.raises(ValueError, match="max_seconds"):
        fit(d, x.train, steps=1, max_seconds=0, progress=False)
    with pytest.raises(ValueError, match="needs max_seconds"):
        fit(d, x.train, steps=None, progress=False)


def test_fit_preprocess_noise_follows_the_seed_not_the_global_rng():
    pixels = torch.randint(0, 4, (64, 2), generator=torch.Generator().manual_seed(0))

    def run(global_seed):
        torch.manual_seed(0)
        d = flow_distribution(realnvp(2, num_layers=2, hidden_dims=(8,)))
        torch.manual_seed(global_seed)
        r = fit(
            d,
            pixels,
            steps=4,
            batch_size=32,
            eval_every=2,
            progress=False,
            seed=5,
            preprocess=lambda b: data.dequantize(b, levels=4),
        )
        return r.history.train_nll

    assert run(1) == run(2)


def _one_step_change(**options):
    torch.manual_seed(0)
    flow = realnvp(2, num_layers=2, hidden_dims=(8,))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    before = [p.detach().clone() for p in flow.parameters()]
    fit(
        flow_distribution(flow),
        normal_data(64, 3.0),
        steps=1,
        batch_size=64,
        lr=1e-2,
        progress=False,
        seed=0,
        **options,
    )
    return torch.cat([(p.detach() - b).flatten() for p, b in zip(flow.parameters(), before)])


def test_clip_grad_clips():
    # Adam's first step is lr * g / (|g| + eps) per coordinate; a gradient clipped to norm 1e-10 is far below
    # eps, so the step shrinks to almost nothing. Without clipping it is about lr for every coordinate moved.
    free, clipped = _one_step_change(), _one_step_change(clip_grad=1e-10)
    assert free.abs().max() > 5e-3
    assert clipped.abs().max() < 0.05 * free.abs().max()


def test_weight_decay_pulls_the_parameters_to_zero():
    torch.manual_seed(0)
    norms = []
    for wd in (0.0, 1e3):
        flow = realnvp(2, num_layers=2, hidden_dims=(8,))
        fit(
            flow_distribution(flow),
            normal_data(64, 1.0),
            steps=100,
            batch_size=64,
            lr=2e-2,
            progress=False,
            seed=0,
            weight_decay=wd,
        )
        norms.append(sum(p.detach().norm() ** 2 for p in flow.parameters()).sqrt().item())
    assert norms[1] < 0.7 * norms[0]


def conditional_data(n, seed):
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, 2, generator=g)
    return c[:, :1] * 2 + 0.3 * torch.randn(n, 2, generator=g), c


@pytest.mark.parametrize("form", ["bound", "conditional"])
def test_fit_trains_a_conditional_flow_with_its_context_minibatched(one_thread, form):
    torch.manual_seed(0)
    x, c = conditional_data(512, 0)
    xv, cv = conditional_data(256, 1)
    flow = pf.maf(2, num_layers=2, hidden_dims=(16,), context_dim=2)
    cond = flow_distribution(flow)
    before = nll(cond, xv, context=cv)
    if form == "bound":
        result = fit(
            flow_distribution(flow, context=c),
            x,
            xv,
            valid_context=cv,
            steps=150,
            batch_size=64,
            lr=5e-3,
            eval_every=50,
            progress=False,
            seed=0,
        )
    else:
        result = fit(
            cond,
            x,
            xv,
            context=c,
            valid_context=cv,
            steps=150,
            batch_size=64,
            lr=5e-3,
            eval_every=50,
            progress=False,
            seed=0,
        )
    after = nll(cond, xv, context=cv)
    assert after < before - 1.0  # the context explains most of the first coordinate
    assert result.best_valid == pytest.approx(after, rel=1e-5)
    # the same context shuffled: the fit used it row by row, so mismatched rows score worse
    assert nll(cond, xv, context=cv[torch.randperm(256)]) > after + 0.5


def test_fit_conditional_errors():
    x, c = conditional_data(64, 0)
    flow = pf.maf(2, num_layers=1, hidden_dims=(8,), context_dim=2)
    with pytest.raises(ValueError, match="needs train's context"):
        fit(flow_distribution(flow), x, steps=1, progress=False)
    with pytest.raises(ValueError, match="valid needs valid_context"):
        fit(flow_distribution(flow, context=c), x, x, steps=1, progress=False)
    with pytest.raises(ValueError, match=r"one row per data row, shape \(64, context_dim\)"):
        fit(flow_distribution(flow), x, context=c[:10], steps=1, progress=False)
    with pytest.raises(ValueError, match="unconditional but was given a context"):
        fit(flow_distribution(pf.maf(2, num_layers=1, hidden_dims=(8,))), x, context=c, steps=1, progress=False)


def test_a_bound_distribution_given_another_context_is_an_error():
    x, c = conditional_data(32, 0)
    flow = pf.maf(2, num_layers=1, hidden_dims=(8,), context_dim=2)
    with pytest.raises(ValueError, match="bound to a context already and was given another"):
        fit(flow_distribution(flow, context=c), x, context=c.clone(), steps=1, progress=False)
    fit(flow_distribution(flow, context=c), x, context=c, steps=1, progress=False)  # the same tensor is fine
