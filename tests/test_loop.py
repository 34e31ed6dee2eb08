"""The shared training loop with an SVI step: what the VAE's training will run."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO

import pyro_flows as pf
from pyro_flows.loop import LoopOptions, TrainingDiverged, run_loop


def model():
    pyro.sample("z", dist.Normal(torch.tensor([2.0, -1.0]), 0.5).to_event(1))


def test_run_loop_trains_an_svi_guide_and_keeps_the_best_parameters():
    torch.manual_seed(0)
    pyro.clear_param_store()
    flow = pf.iaf(2, num_layers=2, hidden_dims=(16,))

    def guide():
        pyro.module("flow", flow)
        pyro.sample("z", pf.flow_distribution(flow))

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 2e-2}), Trace_ELBO(num_particles=16, vectorize_particles=True))
    evaluations = []

    def evaluate():
        loss = Trace_ELBO(num_particles=256, vectorize_particles=True).loss(model, guide)
        evaluations.append(loss)
        return loss

    result = run_loop(lambda k: svi.step(), evaluate, [flow], LoopOptions(steps=300, eval_every=50, progress=False))
    assert result.steps_run == 300 and len(result.history.step) == 6
    assert result.best_valid == min(evaluations) and result.best_valid < evaluations[0]
    assert not flow.training


def test_run_loop_turns_a_nan_loss_into_divergence_and_restores():
    layer = pf.Rescale(2)
    before = {k: v.clone() for k, v in layer.state_dict().items()}

    def step(k):
        with torch.no_grad():
            layer.params.s.add_(1.0)  # an update ...
        return math.nan if k == 3 else 1.0  # ... then a NaN loss

    with pytest.raises(TrainingDiverged, match="at step 3.*initial parameters"):
        run_loop(step, lambda: 1.0, [layer], LoopOptions(steps=10, eval_every=5, progress=False))
    assert all(torch.equal(layer.state_dict()[k], v) for k, v in before.items())


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(steps=0), "steps must be a positive int"),
        (dict(steps=None), "needs max_seconds"),
        (dict(eval_every=True), "eval_every must be a positive int"),
        (dict(max_seconds=-1.0), "max_seconds must be a positive number"),
    ],
)
def test_loop_options_are_validated_in_one_place(options, message):
    with pytest.raises(ValueError, match=message):
        LoopOptions(**options)
