"""Logit preprocessing: domain errors and its role at the end of an image flow (beyond the contract test)."""

import math

import pytest
import torch

import pyro_flows as pf


def test_logit_rejects_data_outside_the_unit_interval():
    with pytest.raises(ValueError, match=r"Logit expected data in \[0, 1\]"):
        pf.Logit(3)(torch.tensor([0.2, 1.5, 0.3]))


def test_logit_rejects_a_bad_margin():
    with pytest.raises(ValueError, match="lam"):
        pf.Logit(3, lam=0.5)


def test_flow_ending_in_logit_inverse_scores_unit_interval_data():
    # The distribution lives on [0, 1]^D and its log_prob includes the logit's Jacobian:
    # identity flow + Logit(lam=0).inv is the logistic density pushed through a sigmoid = uniform on (0, 1).
    d = pf.flow_distribution(pf.Compose([pf.Rescale(4), pf.Logit(4, lam=0.0).inv]))
    x = torch.rand(10, 4) * 0.98 + 0.01
    lp = d.log_prob(x)
    z = torch.logit(x)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1) - torch.log(x * (1 - x)).sum(-1)
    torch.testing.assert_close(lp, expected, atol=1e-5, rtol=1e-5)
    s = d.sample((100,))
    assert ((s >= 0) & (s <= 1)).all()
    assert pf.data.bits_per_dim(float(-lp.detach().mean()), 4) > 0
    assert math.isfinite(float(lp.detach().sum()))
