"""WaveNet, the recurrent conditioner and PixelCNN: causality proven from the Jacobian (each output depends on
EXACTLY the inputs its order and receptive field say), cached generation exact against the generic recursion,
and clear errors."""

import pytest
import torch

import pyro_flows as pf
from pyro_flows.nn import PixelCNN, RecurrentConditioner, WaveNet
from pyro_flows.protocols import AutoregressiveConditioner


def randomized(net, scale=0.3):
    torch.manual_seed(1)
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn_like(p))
    return net


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def dependence(net, x, context=None, *, draws=4):
    """``dep[out..., in...]``: whether any parameter at an output entry depends on an input entry, at ``x``
    or at one of ``draws - 1`` further random inputs (a ReLU can be off at one point; the union over a few
    inputs is the structure)."""
    dep = None
    for k in range(draws):
        v0 = x if k == 0 else torch.randn_like(x)
        jac = torch.autograd.functional.jacobian(lambda v: torch.stack(net(v, context)), v0)
        dep = jac.abs().sum(0) > 0 if dep is None else dep | (jac.abs().sum(0) > 0)
    return dep


def sequence_expected(C, T, lo):
    """Output (c, t) reads input (c', s) iff lo(t) <= s <= t - 1, any c'."""
    t = torch.arange(T)
    window = (t[None, :] <= t[:, None] - 1) & (t[None, :] >= lo(t)[:, None])  # (t, s)
    return window[None, :, None, :].expand(C, T, C, T)


@pytest.mark.parametrize("kernel_size", [2, 3])
@pytest.mark.parametrize("dilations", [(1, 2, 4), (1, 3, 1, 2)])
def test_wavenet_reads_exactly_its_receptive_field(kernel_size, dilations):
    net = randomized(WaveNet(2, 48, residual_channels=6, skip_channels=6, kernel_size=kernel_size, dilations=dilations))
    R = net.receptive_field
    assert R == (kernel_size - 1) * (1 + sum(dilations)) + 1
    assert f"receptive_field={R}" in repr(net)
    assert R < 48, "the window's left edge must be visible in the test"
    with torch.no_grad():
        net.head.bias.fill_(1.0)  # keep the head's ReLUs on for most inputs: the test is about structure
    dep = dependence(net, torch.randn(2, 48, dtype=torch.float64), draws=8)
    assert torch.equal(dep, sequence_expected(2, 48, lambda t: t - R))


def test_the_recurrent_conditioner_reads_every_earlier_step_and_no_other():
    net = randomized(RecurrentConditioner(2, 10, hidden_size=5, num_layers=2))
    dep = dependence(net, torch.randn(2, 10, dtype=torch.float64))
    assert torch.equal(dep, sequence_expected(2, 10, lambda t: torch.zeros_like(t)))


def pixelcnn_expected(C, H, W, R):
    """Output (c, i, j) reads (c', i', j') iff: same pixel and c' < c; same row and j - R <= j' < j; or
    i - 1 - R <= i' <= i - 1 and |j' - j| <= R (see PixelCNN's docstring)."""
    c, i, j = (g.reshape(C, H, W, 1, 1, 1) for g in torch.meshgrid(*map(torch.arange, (C, H, W)), indexing="ij"))
    c2, i2, j2 = (g.reshape(1, 1, 1, C, H, W) for g in torch.meshgrid(*map(torch.arange, (C, H, W)), indexing="ij"))
    same_pixel = (i2 == i) & (j2 == j) & (c2 < c)
    row = (i2 == i) & (j2 < j) & (j2 >= j - R)
    above = (i2 <= i - 1) & (i2 >= i - 1 - R) & ((j2 - j).abs() <= R)
    return same_pixel | row | above


@pytest.mark.parametrize("channels,layers,kernel", [(1, 2, 3), (2, 2, 3), (3, 1, 5), (2, 3, 3)])
def test_pixelcnn_reads_exactly_its_receptive_field_in_raster_order(channels, layers, kernel):
    C, H, W = channels, 9, 9
    net = randomized(PixelCNN(C, H, W, hidden_channels=6 * C, num_layers=layers, kernel_size=kernel))
    R = net.receptive_field
    assert R == layers * (kernel // 2) and f"receptive_field={R}" in repr(net)
    dep = dependence(net, torch.randn(C, H, W, dtype=torch.float64))
    expected = pixelcnn_expected(C, H, W, R)
    assert torch.equal(dep, expected)
    # and so only on entries earlier in the order (degrees)
    d = net.degrees
    assert not bool((dep & (d.reshape(C, H, W, 1, 1, 1) <= d.reshape(1, 1, 1, C, H, W))).any())


def test_pixelcnn_has_no_blind_spot():
    # with a receptive field covering the image, every output reads EVERY earlier entry (the vertical and
    # horizontal stacks close the blind spot of masked convolutions)
    C, H, W = 2, 4, 4
    net = randomized(PixelCNN(C, H, W, hidden_channels=4, num_layers=3))
    dep = dependence(net, torch.randn(C, H, W, dtype=torch.float64))
    d = net.degrees
    assert torch.equal(dep, d.reshape(C, H, W, 1, 1, 1) > d.reshape(1, 1, 1, C, H, W))


@pytest.mark.parametrize(
    "build",
    [
        lambda: WaveNet(1, 20, residual_channels=4, skip_channels=4, dilations=(1, 2), context_dim=3),
        lambda: WaveNet(1, 20, residual_channels=4, skip_channels=4, dilations=(1, 2), local_context=(1, 3)),
        lambda: RecurrentConditioner(1, 20, hidden_size=4, context_dim=3),
        lambda: PixelCNN(1, 4, 4, hidden_channels=4, num_layers=2, context_dim=3),
    ],
    ids=["wavenet-global", "wavenet-local", "recurrent", "pixelcnn"],
)
def test_every_output_depends_on_the_context(build):
    net = randomized(build())
    if isinstance(net, WaveNet):
        with torch.no_grad():
            net.head.bias.fill_(1.0)  # keep the head's ReLUs on for most inputs: the test is about structure
    x = torch.randn(*net.event_shape, dtype=torch.float64)
    dep = dependence(lambda c, _: net(x, c), torch.randn(3, dtype=torch.float64), draws=8)
    assert bool(dep.any(-1).all())
    assert isinstance(net, AutoregressiveConditioner)


def test_local_conditioning_is_local():
    # the local sequence (3 steps, upsampled to T = 12) reaches output t only through its own segment
    net = randomized(WaveNet(1, 12, residual_channels=4, skip_channels=4, dilations=(1,), local_context=(1, 3)))
    x = torch.randn(1, 12, dtype=torch.float64)
    dep = dependence(lambda c, _: net(x, c), torch.randn(3, dtype=torch.float64))[0]  # (T, 3)
    assert torch.equal(dep, torch.eye(3, dtype=torch.bool).repeat_interleave(4, dim=0))


CACHED = {
    "wavenet-k2": lambda c: WaveNet(2, 30, residual_channels=5, skip_channels=4, dilations=(1, 2, 4, 8), context_dim=c),
    "wavenet-k3": lambda c: WaveNet(
        2, 30, residual_channels=5, skip_channels=4, kernel_size=3, dilations=(1, 3), context_dim=c
    ),
    "wavenet-local": lambda c: WaveNet(
        1,
        30,
        residual_channels=5,
        skip_channels=4,
        dilations=(1, 2),
        context_dim=None if c is None else 1,
        local_context=None if c is None else (1, 2),
    ),
    "recurrent": lambda c: RecurrentConditioner(2, 30, hidden_size=6, num_layers=2, context_dim=c),
    # a crop smaller than the image (R = 2 of 6 x 7) and a channel order inside each pixel
    "pixelcnn": lambda c: PixelCNN(2, 6, 7, hidden_channels=4, num_layers=2, context_dim=c),
}


@pytest.mark.parametrize("name", sorted(CACHED))
@pytest.mark.parametrize("context", [False, True])
@pytest.mark.parametrize("layer", [pf.MAF, pf.IAF])
def test_cached_generation_equals_the_generic_recursion(name, context, layer):
    net = randomized(CACHED[name](3 if context else None))
    flow = layer(conditioner=net)
    x = torch.randn(2, 3, *net.event_shape, dtype=torch.float64)
    ctx = torch.randn(1, 3, 3, dtype=torch.float64) if context else None  # broadcasts against (2, 3)
    slow = flow.inv if layer is pf.IAF else flow  # the direction that runs the sequential side
    with torch.no_grad():
        flow.inversion = "recursive"
        a, la = slow.forward_and_log_det(x, ctx)
        flow.inversion = "sequential"
        b, lb = slow.forward_and_log_det(x, ctx)
    assert a.shape == x.shape and la.shape == (2, 3)
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(lb, la, rtol=1e-10, atol=1e-10)


def test_cached_generation_runs_no_full_pass():
    net = WaveNet(1, 50, residual_channels=4, skip_channels=4, dilations=(1, 2))
    calls = []
    net.register_forward_hook(lambda *a: calls.append(1))
    flow = pf.MAF(conditioner=net)
    with torch.no_grad():
        flow(torch.randn(3, 1, 50))
    assert not calls


def test_a_factory_builds_one_conditioner_per_layer():
    flow = pf.maf((1, 16), num_layers=3, conditioner=lambda i: WaveNet(1, 16, residual_channels=4, dilations=(1,)))
    nets = [part.conditioner for part in flow.parts]
    assert len({id(n) for n in nets}) == 3
    with pytest.raises(TypeError, match="function of the layer index"):
        pf.maf((1, 16), conditioner=WaveNet(1, 16))
    with pytest.raises(ValueError, match="hidden_dims.*ignored"):
        pf.maf((1, 16), hidden_dims=(8,), conditioner=lambda i: WaveNet(1, 16))
    with pytest.raises(ValueError, match="seed.*ignored"):
        pf.iaf((1, 16), seed=0, conditioner=lambda i: WaveNet(1, 16))


def test_options_a_conditioner_would_ignore_are_refused():
    net = WaveNet(1, 16)
    with pytest.raises(ValueError, match="hidden_dims.*ignored"):
        pf.MAF(None, (8,), conditioner=net)
    with pytest.raises(ValueError, match="ordering.*ignored"):
        pf.MAF(conditioner=net, ordering="reversed")
    with pytest.raises(ValueError, match="residual.*ignored"):
        pf.MAF(conditioner=net, residual=True)
    with pytest.raises(ValueError, match="does not match"):
        pf.MAF((1, 8), conditioner=net)
    with pytest.raises(ValueError, match="context_dim=2 does not match"):
        pf.MAF(conditioner=net, context_dim=2)
    with pytest.raises(ValueError, match="pass conditioner="):
        pf.MAF((1, 16))
    with pytest.raises(TypeError, match="autoregressive conditioner"):
        pf.MAF(conditioner=torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="2 parameter tensors"):
        pf.MAF(conditioner=WaveNet(1, 16, num_params=2), op=pf.ops.Additive())(torch.randn(1, 16))


def test_bad_inputs_and_options_get_clear_errors():
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, T\)"):
        WaveNet(2, 16)(torch.randn(3, 16))
    with pytest.raises(ValueError, match="needs a context"):
        WaveNet(1, 16, context_dim=2)(torch.randn(1, 16))
    with pytest.raises(ValueError, match="local_context"):
        WaveNet(1, 16, local_context=(1, 2, 3))
    with pytest.raises(ValueError, match="odd"):
        PixelCNN(1, 4, 4, kernel_size=4)
    with pytest.raises(ValueError, match="multiple of channels"):
        PixelCNN(3, 4, 4, hidden_channels=8)
    with pytest.raises(ValueError, match="dilations"):
        WaveNet(1, 16, dilations=(1, 0))
    flow = pf.IAF(3, (4, 4), residual=True)  # a residual MADE has no one-pass inversion
    flow.inversion = "sequential"
    with pytest.raises(ValueError, match="has none here"):
        flow.inv(torch.randn(1, 3))


def test_a_wavenet_maf_is_a_pyro_density_and_trains():
    import pyro.distributions as dist

    torch.manual_seed(0)
    flow = pf.maf((1, 32), num_layers=2, conditioner=lambda i: WaveNet(1, 32, residual_channels=8, dilations=(1, 2, 4)))
    d = dist.TransformedDistribution(dist.Normal(torch.zeros(1, 32), 1).to_event(2), flow)
    t = torch.linspace(0, 12, 32)
    data = torch.sin(t + torch.rand(64, 1, 1) * 6) + 0.05 * torch.randn(64, 1, 32)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-2)
    first = -d.log_prob(data).mean().item()
    for _ in range(60):
        opt.zero_grad()
        loss = -d.log_prob(data).mean()
        loss.backward()
        opt.step()
    assert loss.item() < first - 20
    sample = d.sample((3,))
    assert sample.shape == (3, 1, 32) and torch.isfinite(d.log_prob(sample)).all()


def test_the_old_input_dim_keyword_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match="input_dim= is deprecated.*use event_shape="):
        layer = pf.MAF(input_dim=3, hidden_dims=(4,))
    assert layer.event_shape == (3,)
    with pytest.warns(DeprecationWarning, match="maf: input_dim="):
        assert pf.maf(input_dim=3, hidden_dims=(4,)).event_shape == (3,)
    with pytest.raises(TypeError, match="both event_shape= and its deprecated name"):
        pf.IAF(3, input_dim=3)
