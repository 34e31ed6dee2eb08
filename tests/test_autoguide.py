"""pyro_flows factories as Pyro's AutoNormalizingFlow init_transform_fn."""

import functools
import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.infer.autoguide import AutoNormalizingFlow

import pyro_flows as pf


def model():
    a = pyro.sample("a", dist.Normal(0.0, 1.0))
    b = pyro.sample("b", dist.Normal(torch.zeros(2), 1.0).to_event(1))
    pyro.sample("obs", dist.Normal(a + b.sum(-1), 0.5), obs=torch.tensor(2.0))


# obs ~ N(0, 1 + 1 + 1 + 0.25) marginally: the negative ELBO of an exact guide is -log p(obs = 2)
NEG_LOG_EVIDENCE = 0.5 * math.log(2 * math.pi * 3.25) + 2.0**2 / (2 * 3.25)


@pytest.mark.parametrize("factory", [pf.iaf, pf.maf, pf.realnvp], ids=["iaf", "maf", "realnvp"])
def test_auto_normalizing_flow_trains(factory):
    torch.manual_seed(0)
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    guide = AutoNormalizingFlow(model, functools.partial(factory, num_layers=2, hidden_dims=(16,)))
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO(num_particles=4, vectorize_particles=True))
    losses = [svi.step() for _ in range(500)]
    assert len(pyro.get_param_store()) > 0
    final = sum(losses[-50:]) / 50
    assert abs(final - NEG_LOG_EVIDENCE) < 0.2, (final, NEG_LOG_EVIDENCE)
    sample = guide()
    assert sample["a"].shape == () and sample["b"].shape == (2,)
