"""BatchNorm's train mode: exact inverse of the batch it normalized, running statistics, clear errors."""

import pytest
import torch

import pyro_flows as pf


def test_train_mode_normalizes_the_batch_and_inverts_exactly():
    torch.manual_seed(0)
    bn = pf.BatchNorm(3)
    y = torch.randn(256, 3) * torch.tensor([1.0, 5.0, 0.1]) + 4
    x = bn.inv(y)
    torch.testing.assert_close(x.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(bn(x.clone()), y, atol=1e-4, rtol=1e-5)
    ld = bn.log_abs_det_jacobian(x, y)
    expected = 0.5 * torch.log(y.var(0, unbiased=False) + bn.eps).sum()
    torch.testing.assert_close(ld, expected.expand(256), atol=1e-5, rtol=1e-5)


def test_running_statistics_and_eval_mode():
    bn = pf.BatchNorm(2, momentum=0.5)
    y = torch.randn(500, 2) * 3 + 1
    bn.inv(y)
    torch.testing.assert_close(bn.running_mean, 0.5 * y.mean(0))
    bn.eval()
    x = bn.inv(y.clone())
    torch.testing.assert_close(x, (y - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps))
    torch.testing.assert_close(bn(x.clone()), y, atol=1e-5, rtol=1e-5)


def test_batch_statistics_carry_gradients_in_train_mode():
    bn = pf.BatchNorm(2)
    y = torch.randn(64, 2, requires_grad=True)
    bn.inv(y).pow(2).sum().backward()
    # sum of squares of a standardized batch is constant (= N * D): its gradient through the stats is ~0
    assert y.grad.abs().max() < 1e-3


def test_train_mode_needs_two_points():
    with pytest.raises(ValueError, match="at least 2"):
        pf.BatchNorm(2).inv(torch.randn(1, 2))
