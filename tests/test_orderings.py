"""Order-agnostic training helpers: resampling every MADE, and the ensemble over orderings."""

import pytest
import torch

import pyro_flows as pf
from pyro_flows import orderings


def made_state(flow):
    return [
        torch.cat([m.degrees.float()] + [layer.mask.flatten().float() for layer in list(m.layers) + [m.output]])
        for m in orderings.mades(flow)
    ]


def test_ensemble_of_one_is_the_log_prob_and_masks_are_restored():
    torch.manual_seed(0)
    flow = pf.maf(4, num_layers=2, hidden_dims=(16,))
    d = pf.flow_distribution(flow)
    x = torch.randn(6, 4)
    before = made_state(flow)
    torch.testing.assert_close(orderings.ensemble_log_prob(d, x, 1), d.log_prob(x.clone()))
    orderings.ensemble_log_prob(d, x, 5, seed=1)
    for a, b in zip(before, made_state(flow)):
        assert torch.equal(a, b)


def test_ensemble_is_the_mean_density_of_its_members():
    torch.manual_seed(0)
    flow = pf.maf(3, num_layers=1, hidden_dims=(16,))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    d = pf.flow_distribution(flow)
    x = torch.randn(5, 3)
    got = orderings.ensemble_log_prob(d, x, 3, seed=7)
    members = [d.log_prob(x.clone())]
    with torch.random.fork_rng():
        torch.manual_seed(7)
        for _ in range(2):
            orderings.resample(flow)
            members.append(d.log_prob(x.clone()))
    expected = torch.stack(members).exp().mean(0).log()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(members[0], members[1])  # the orderings really differ


def test_order_agnostic_training_step():
    torch.manual_seed(0)
    flow = pf.maf(3, num_layers=1, hidden_dims=(32,))
    d = pf.flow_distribution(flow)
    opt = torch.optim.Adam(flow.parameters(), 1e-2)
    data = torch.randn(256, 3) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.8], [0.0, 0.0, 1.0]])
    start = -orderings.ensemble_log_prob(d, data, 4, seed=0).mean()
    for _ in range(150):
        orderings.resample(flow)  # a new ordering per minibatch
        opt.zero_grad()
        (-d.log_prob(data[torch.randint(0, 256, (64,))]).mean()).backward()
        opt.step()
    end = -orderings.ensemble_log_prob(d, data, 4, seed=0).mean()
    assert end < start - 0.3


def test_errors():
    with pytest.raises(ValueError, match="no MADE"):
        orderings.resample(pf.realnvp(4, hidden_dims=(8,)))
    d = pf.flow_distribution(pf.maf(3, num_layers=1, hidden_dims=(8,)))
    with pytest.raises(ValueError, match="num_orderings"):
        orderings.ensemble_log_prob(d, torch.zeros(1, 3), 0)
