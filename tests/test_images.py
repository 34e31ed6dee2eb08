"""Image transforms beyond the contract: the multi-scale models' exact log_prob, ActNorm's one-time
initialization, the two 1x1 convolutions, squeeze layout, coupling masks, and image batch norm."""

from __future__ import annotations

import copy
import io

import pyro
import pyro.distributions as dist
import pytest
import torch
from cases import randomize
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

import pyro_flows as pf


def std_normal_log_prob(z):
    return torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(-3).sum(-1)


def leaf_log_dets(flow, y, out):
    """Runs ``flow``'s density direction (inverse) on ``y`` one leaf layer at a time, appending each leaf's
    log-det to ``out``; descends into Compose, Squeeze and FactorOut. Returns the latent."""
    if isinstance(flow, pf.Compose):
        for part in reversed(flow.parts):
            y = leaf_log_dets(part, y, out)
        return y
    if isinstance(flow, pf.Squeeze):
        return pf.depth_to_space(leaf_log_dets(flow.flow, pf.space_to_depth(y), out))
    if isinstance(flow, pf.FactorOut):
        kept, factored = y.split([y.shape[-3] - flow.factored, flow.factored], dim=-3)
        return torch.cat([leaf_log_dets(flow.flow, kept, out), factored], dim=-3)
    x, ld = flow.inverse_and_log_det(y)
    out.append(ld)
    return x


def tiny_models():
    torch.manual_seed(0)
    glow = randomize(pf.glow((1, 4, 4), levels=2, depth=2, hidden_channels=4, num_blocks=1), 0.05)
    with torch.no_grad():  # ActNorm's data-dependent initialization, on a data batch
        glow.inv(torch.rand(16, 1, 4, 4) * 3)
    additive = randomize(pf.glow((1, 4, 4), levels=2, depth=1, hidden_channels=4, additive=True, lu=False), 0.05)
    with torch.no_grad():
        additive.inv(torch.rand(16, 1, 4, 4) * 3)
    realnvp = randomize(pf.realnvp_image((2, 4, 4), levels=2, hidden_channels=4, num_blocks=1, batch_norm=True), 0.05)
    with torch.no_grad():
        realnvp.inv(torch.rand(16, 2, 4, 4) * 3)  # train-mode batch norm: running statistics
    realnvp.eval()
    return {"glow": glow, "glow-additive-plain": additive, "realnvp_image": realnvp}


@pytest.mark.parametrize("name", ["glow", "glow-additive-plain", "realnvp_image"])
def test_multiscale_log_prob_is_exact(name):
    flow = tiny_models()[name].to(torch.float64)
    d = pf.flow_distribution(flow)
    torch.manual_seed(1)
    data = torch.rand(3, *flow.event_shape, dtype=torch.float64) * 3
    lp = d.log_prob(data)
    for i in range(data.shape[0]):
        x = data[i]
        # 1. the sum of the per-layer log-dets plus the base term
        lds = []
        z = leaf_log_dets(flow, x.clone(), lds)
        n_leaves = len(lds)
        torch.testing.assert_close(lp[i], std_normal_log_prob(z) - sum(lds), atol=1e-10, rtol=1e-10)
        # 2. the autograd Jacobian of the whole density map x -> z
        jac = torch.autograd.functional.jacobian(lambda v: flow.inv(v.clone()), x.clone())
        sign, logabsdet = torch.linalg.slogdet(jac.reshape(x.numel(), x.numel()))
        assert sign != 0
        torch.testing.assert_close(lp[i], std_normal_log_prob(z) + logabsdet, atol=1e-8, rtol=1e-8)
    assert n_leaves == {"glow": 2 * 2 * 3, "glow-additive-plain": 2 * 3, "realnvp_image": 3 + 2 + 3 + 2 + 4 + 3}[name]


@pytest.mark.parametrize("name", ["glow", "realnvp_image"])
def test_multiscale_sample_shape_and_log_prob_of_sample(name):
    flow = tiny_models()[name]
    d = pf.flow_distribution(flow)
    s = d.sample(torch.Size([5]))
    assert s.shape == (5, *flow.event_shape)
    z, ld = flow.inverse_and_log_det(s.clone())
    torch.testing.assert_close(flow(z.clone()), s, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(d.log_prob(s), std_normal_log_prob(z) - ld, atol=1e-4, rtol=1e-4)


def test_multiscale_factors_out_half_at_each_level():
    flow = pf.glow((1, 8, 8), levels=3, depth=1, hidden_channels=4)
    shapes, f = [], flow.parts[0]
    while True:
        assert isinstance(f, pf.Squeeze)
        shapes.append(tuple(f.flow.event_shape))
        last = f.flow.parts[0]
        if not isinstance(last, pf.FactorOut):
            break
        assert last.factored == f.flow.event_shape[0] // 2
        f = last.flow
    assert shapes == [(4, 4, 4), (8, 2, 2), (16, 1, 1)]


def test_factories_reject_shapes_they_cannot_squeeze():
    with pytest.raises(ValueError, match="divisible by 4"):
        pf.glow((1, 6, 6), levels=2)
    with pytest.raises(ValueError, match="divisible by 2"):
        pf.realnvp_image((1, 5, 4), levels=2)
    with pytest.raises(ValueError, match="image shape"):
        pf.glow((16,))


# --- ActNorm ------------------------------------------------------------------------------------------------
def test_actnorm_initializes_once_from_the_first_batch():
    an = pf.ActNorm((3, 2, 2))
    assert not an.initialized
    an.inv(torch.randn(3, 2, 2))  # unbatched: no initialization
    assert not an.initialized
    y = torch.randn(64, 3, 2, 2) * torch.tensor([1.0, 5.0, 0.1])[:, None, None] + 3
    x = an.inv(y)
    assert an.initialized
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    state = {k: v.clone() for k, v in an.state_dict().items()}
    an.inv(torch.randn(64, 3, 2, 2) * 7)  # a second batch: no re-initialization
    an(torch.randn(64, 3, 2, 2) * 7)
    for k, v in an.state_dict().items():
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)


def test_actnorm_first_call_forward_standardizes_its_output():
    an = pf.ActNorm(4)  # vectors too
    y = an(torch.randn(128, 4) * 3 - 2)
    torch.testing.assert_close(y.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(0, unbiased=False), torch.ones(4), atol=1e-4, rtol=0)


def trained_actnorm():
    an = pf.ActNorm((2, 3, 3))
    an.inv(torch.randn(32, 2, 3, 3) * 4 + 1)
    with torch.no_grad():
        an.loc.add_(0.3)  # as if trained after the initialization
    return an


def assert_not_reinitialized(an, reference):
    ref = (reference.loc.detach().clone(), reference.log_scale.detach().clone())
    dtype = an.loc.dtype
    an.inv(torch.randn(32, 2, 3, 3, dtype=dtype) * 9 - 4)
    an(torch.randn(32, 2, 3, 3, dtype=dtype) * 9 - 4)
    torch.testing.assert_close(an.loc.detach(), ref[0].to(dtype), rtol=0, atol=0)
    torch.testing.assert_close(an.log_scale.detach(), ref[1].to(dtype), rtol=0, atol=0)


def test_actnorm_initialization_survives_state_dict_and_is_not_rerun():
    an = trained_actnorm()
    assert "initialized" in an.state_dict()
    fresh = pf.ActNorm((2, 3, 3))
    fresh.load_state_dict(an.state_dict())
    assert fresh.initialized
    assert_not_reinitialized(fresh, an)
    # and the other way: loading an uninitialized state makes the next batch initialize again
    fresh.load_state_dict(pf.ActNorm((2, 3, 3)).state_dict())
    fresh.inv(torch.randn(32, 2, 3, 3) * 4 + 1)
    assert fresh.initialized and not torch.equal(fresh.loc, an.loc)


def test_actnorm_initialization_survives_deepcopy_and_pickle():
    an = trained_actnorm()
    assert_not_reinitialized(copy.deepcopy(an), an)
    buf = io.BytesIO()
    torch.save(an, buf)
    buf.seek(0)
    assert_not_reinitialized(torch.load(buf, weights_only=False), an)
    assert_not_reinitialized(an.to(torch.float64), an)


def test_actnorm_initializes_on_the_first_svi_step_only():
    pyro.clear_param_store()
    an = pf.ActNorm((2, 2, 2))

    def model():
        pyro.sample("z", dist.Normal(3.0, 2.0).expand([2, 2, 2]).to_event(3))

    def guide():
        pyro.module("an", an)
        pyro.sample("z", pf.flow_distribution(an))

    # vectorized particles give the guide's samples a batch dim (an unbatched sample does not initialize)
    elbo = Trace_ELBO(num_particles=16, vectorize_particles=True, max_plate_nesting=0)
    svi = SVI(model, guide, Adam({"lr": 1e-3}), elbo)
    svi.step()
    assert an.initialized
    with torch.no_grad():
        an.loc.fill_(5.0)
    for _ in range(3):
        svi.step()
    assert (an.loc - 5.0).abs().max() < 0.01  # only Adam's small steps, no re-initialization
    assert pyro.get_param_store()["an$$$loc"] is an.loc


# --- invertible 1x1 convolution -----------------------------------------------------------------------------
def test_lu_and_plain_conv1x1_agree_when_built_from_the_same_matrix():
    torch.manual_seed(0)
    w = torch.randn(4, 4, dtype=torch.float64)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # parameters made in float64, so no float32 rounding
    try:
        plain = pf.InvertibleConv1x1((4, 3, 3), lu=False, weight=w)
        lu = pf.InvertibleConv1x1((4, 3, 3), lu=True, weight=w)
    finally:
        torch.set_default_dtype(default)
    torch.testing.assert_close(lu.matrix(), w)
    x = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    (y1, ld1), (y2, ld2) = plain.forward_and_log_det(x), lu.forward_and_log_det(x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(ld1, ld2)
    torch.testing.assert_close(ld1, torch.linalg.slogdet(w)[1].expand(5) * 9)
    torch.testing.assert_close(y1, torch.einsum("ij,njhw->nihw", w, x))
    torch.testing.assert_close(plain.inv(y1.clone()), x)
    torch.testing.assert_close(lu.inv(y1.clone()), x)


def test_conv1x1_rejects_a_singular_weight():
    with pytest.raises(ValueError, match="invertible"):
        pf.InvertibleConv1x1((2, 2, 2), weight=torch.ones(2, 2))
    with pytest.raises(ValueError, match="2 x 2"):
        pf.InvertibleConv1x1((2, 2, 2), weight=torch.eye(3))


# --- squeeze and factor-out ---------------------------------------------------------------------------------
def test_space_to_depth_layout_and_round_trip():
    x = torch.randn(2, 3, 4, 6)
    s = pf.space_to_depth(x)
    assert s.shape == (2, 12, 2, 3)
    for c in range(3):
        for i in range(2):
            for j in range(2):
                torch.testing.assert_close(s[:, 4 * c + 2 * i + j], x[:, c, i::2, j::2], rtol=0, atol=0)
    assert torch.equal(pf.depth_to_space(s), x)
    with pytest.raises(ValueError, match="even"):
        pf.space_to_depth(torch.randn(1, 3, 3))


def test_squeeze_runs_the_inner_flow_on_the_squeezed_image():
    torch.manual_seed(0)
    inner = randomize(pf.AffineCoupling((8, 2, 2), pf.masks.channels((8, 2, 2)), hidden_channels=4))
    sq = pf.Squeeze(inner)
    assert sq.event_shape == (2, 4, 4)
    x = torch.randn(3, 2, 4, 4)
    y, ld = sq.forward_and_log_det(x)
    y_in, ld_in = inner.forward_and_log_det(pf.space_to_depth(x))
    assert torch.equal(y, pf.depth_to_space(y_in)) and torch.equal(ld, ld_in)
    # the channel mask on the squeezed image keeps channels 0..3, i.e. original channel 0: unchanged
    assert torch.equal(y[:, 0], x[:, 0]) and not torch.allclose(y[:, 1], x[:, 1])
    torch.testing.assert_close(sq.inv(y.clone()), x, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="divisible by 4"):
        pf.Squeeze(pf.ActNorm((6, 2, 2)))


def test_factor_out_passes_the_factored_channels_through():
    torch.manual_seed(0)
    inner = randomize(pf.AffineCoupling((2, 4, 4), hidden_channels=4), 0.1)
    f = pf.FactorOut(inner, 3)
    assert f.event_shape == (5, 4, 4)
    x = torch.randn(6, 5, 4, 4)
    y, ld = f.forward_and_log_det(x)
    assert torch.equal(y[:, 2:], x[:, 2:])
    y_in, ld_in = inner.forward_and_log_det(x[:, :2])
    assert torch.equal(y[:, :2], y_in) and torch.equal(ld, ld_in)
    torch.testing.assert_close(f.inv(y.clone()), x, atol=1e-5, rtol=1e-5)


# --- couplings with image masks -----------------------------------------------------------------------------
@pytest.mark.parametrize("mask_fn", [pf.masks.checkerboard, pf.masks.channels], ids=["checkerboard", "channels"])
@pytest.mark.parametrize("flip", [False, True], ids=["", "flip"])
def test_image_coupling_leaves_the_masked_half_unchanged(mask_fn, flip):
    torch.manual_seed(0)
    shape = (2, 4, 4)
    mask = mask_fn(shape, flip=flip)
    layer = randomize(pf.AffineCoupling(shape, mask, hidden_channels=4, num_blocks=1)).double()
    x = torch.randn(3, *shape, dtype=torch.float64)
    y = layer(x)
    assert torch.equal(y[:, mask], x[:, mask])
    assert (y[:, ~mask] - x[:, ~mask]).abs().min() > 0
    assert torch.equal(layer.inv(y.clone())[:, mask], y[:, mask])
    # Jacobian: identity on the kept entries, diagonal on the transformed ones w.r.t. themselves
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.clone()), x[0]).reshape(32, 32)
    keep, change = mask.flatten(), ~mask.flatten()
    torch.testing.assert_close(jac[keep], torch.eye(32, dtype=torch.float64)[keep], rtol=0, atol=0)
    block = jac[change][:, change]
    assert torch.equal(block, torch.diag(torch.diagonal(block)))


def test_image_coupling_argument_errors():
    with pytest.raises(ValueError, match="hidden_dims is for vector"):
        pf.AffineCoupling((2, 4, 4), hidden_dims=(8,))
    with pytest.raises(ValueError, match="for image inputs"):
        pf.AffineCoupling(4, hidden_channels=8)
    with pytest.raises(ValueError, match="shape"):
        pf.AffineCoupling((2, 4, 4), pf.masks.checkerboard((2, 4, 2)))


def test_conv_conditioner_broadcasts_a_context():
    net = pf.nn.ConvResNet(2, (2,), hidden_channels=4, num_blocks=1, context_dim=3)
    (out,) = net(torch.randn(5, 1, 2, 4, 4), torch.randn(7, 3))
    assert out.shape == (5, 7, 2, 4, 4)


# --- batch norm over images ---------------------------------------------------------------------------------
def test_image_batchnorm_uses_per_channel_statistics_over_batch_and_pixels():
    torch.manual_seed(0)
    bn = pf.BatchNorm((3, 4, 4))
    scale = torch.tensor([1.0, 5.0, 0.1])[:, None, None]
    y = torch.randn(64, 3, 4, 4) * scale + 2
    x = bn.inv(y)
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(bn(x.clone()), y, atol=1e-4, rtol=1e-5)
    var = y.transpose(0, 1).reshape(3, -1).var(1, unbiased=False)
    expected = 16 * 0.5 * torch.log(var + bn.eps).sum()
    torch.testing.assert_close(bn.log_abs_det_jacobian(x, y), expected.expand(64), atol=1e-4, rtol=1e-5)
    assert bn.running_mean.shape == (3,)
    # a single image has 16 values per channel: enough for train-mode statistics
    assert bn.inv(torch.randn(1, 3, 4, 4)).shape == (1, 3, 4, 4)


def test_glow_sigmoid_scale_contracts_in_the_density_direction():
    # Glow multiplies by sigmoid(h + 2) in (0, 1) from data to latent; pyro_flows runs that as the inverse.
    raw = torch.linspace(-30, 30, 101)
    z, ld_forward = pf.ops.Affine("sigmoid").inverse(torch.ones(101), (torch.zeros(101), raw))
    torch.testing.assert_close(z, torch.sigmoid(raw + 2))
    assert (z > 0).all() and (z <= 1).all() and (ld_forward >= 0).all()
