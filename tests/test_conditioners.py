"""Coupling conditioners: their outputs depend only on the kept entries, proven from the Jacobian."""

import pytest
import torch

import pyro_flows as pf
from pyro_flows.nn import MaskedDense


@pytest.mark.parametrize(
    "mask",
    [
        pf.masks.halves(6),
        pf.masks.halves(6, flip=True),
        pf.masks.alternating(6),
        torch.tensor([0, 1, 1, 0, 1, 0]).bool(),
    ],
    ids=["first-half", "last-half", "alternating", "scattered"],
)
@pytest.mark.parametrize("context_dim", [None, 2])
def test_masked_dense_reads_only_the_kept_entries(mask, context_dim):
    torch.manual_seed(0)
    net = MaskedDense(mask, 2, hidden_dims=(16, 16), context_dim=context_dim)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(6, dtype=torch.float32)
    ctx = torch.randn(context_dim) if context_dim else None
    jac = torch.autograd.functional.jacobian(lambda v: torch.stack(net(v, ctx)), x)  # (P, 6, 6)
    assert bool((jac[:, :, ~mask] == 0).all()), "a parameter depends on a transformed entry"
    assert bool((jac[:, mask, :] == 0).all()), "the kept entries got non-zero parameters"
    assert bool((jac[:, ~mask][:, :, mask].abs().sum((0, 1)) > 0).all()), "a kept entry conditions nothing"


@pytest.mark.parametrize("shape,mask", [((2, 4, 4), "checkerboard"), ((4, 2, 2), "channels")])
def test_an_image_coupling_reads_only_its_kept_entries(shape, mask):
    # the coupling hands its conditioner x * mask: the parameters (and so y's transformed entries apart from
    # their own x) cannot depend on another transformed entry, whatever the conditioner
    torch.manual_seed(0)
    m = getattr(pf.masks, mask)(shape)
    layer = pf.AffineCoupling(shape, m, hidden_channels=8, num_blocks=1)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(*shape)
    n = x.numel()
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.reshape(shape)).flatten(), x.flatten())
    changed = (~m).flatten()
    cross = jac[changed][:, changed] - torch.diag(torch.diagonal(jac[changed][:, changed]))
    assert bool((cross == 0).all()), "a transformed output depends on another transformed input"
    assert torch.equal(jac[~changed], torch.eye(n)[~changed]), "a kept entry is not passed through"
