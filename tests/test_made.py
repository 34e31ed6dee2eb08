"""MADE: the autoregressive property proven from the input-output Jacobian in every mode, and connectivity."""

import itertools

import pytest
import torch

import pyro_flows as pf
from pyro_flows import masks
from pyro_flows.nn import MADE

D = 6
MODES = {
    "natural": dict(),
    "reversed": dict(ordering="reversed"),
    "random": dict(ordering="random", seed=0),
    "given": dict(ordering=[3, 0, 5, 1, 4, 2]),
    "random-hidden": dict(hidden_degrees="random", seed=1),
    "random-both": dict(ordering="random", hidden_degrees="random", seed=2),
    "residual": dict(residual=True, hidden=(9, 9, 9)),
    "context": dict(context_dim=2),
    "narrow": dict(hidden=(3, 2)),  # fewer hidden units than degrees
    "deep-uneven": dict(hidden=(20, 4, 11), hidden_degrees="random", seed=3),
}


def build(mode, num_params=2):
    kw = dict(MODES[mode])
    hidden = kw.pop("hidden", (10, 8))
    torch.manual_seed(0)
    made = MADE(D, hidden, num_params=num_params, **kw)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(torch.randn_like(p))  # the zero-initialized output layer would hide every dependency
    return made


def jacobian(made, x, context=None):
    return torch.autograd.functional.jacobian(lambda v: torch.stack(made(v, context)), x)  # (P, D, D)


def assert_autoregressive(made, context=None):
    deg = made.degrees
    allowed = deg[:, None] > deg[None, :]  # output i may depend on input j iff degree(j) < degree(i)
    for _ in range(3):
        jac = jacobian(made, torch.randn(D), context)
        assert (jac[:, ~allowed] == 0).all(), "an output depends on an input generated at or after it"
    return jac, allowed


@pytest.mark.parametrize("mode", MODES)
def test_autoregressive_property(mode):
    made = build(mode)
    context = torch.randn(2) if "context" in mode else None
    _, allowed = assert_autoregressive(made, context)
    # and not trivially so: with evenly spread degrees and hidden layers wider than D, every allowed
    # dependency has a path (random degrees may miss some, by design)
    if mode != "narrow" and MODES[mode].get("hidden_degrees") != "random":
        path = torch.eye(D, dtype=torch.int64)
        for layer in list(made.layers) + [made.output]:
            path = layer.mask.long() @ path
        for block in path.reshape(2, D, D):
            assert torch.equal(block > 0, allowed)


@pytest.mark.parametrize("mode", MODES)
def test_autoregressive_after_resampling(mode):
    made = build(mode)
    for ordering, hidden in itertools.product([True, False], repeat=2):
        made.resample(ordering=ordering, hidden=hidden)
        assert_autoregressive(made, torch.randn(2) if "context" in mode else None)


@pytest.mark.parametrize("mode", MODES)
def test_every_hidden_unit_is_connected(mode):
    made = build(mode)
    for _ in range(2):
        weights = [layer.mask.float() for layer in made.layers] + [made.output.mask.float()]
        # paths from inputs into each hidden layer and from each hidden layer to the outputs
        reach_in = torch.ones(D)
        ins = []
        for i, w in enumerate(weights[:-1]):
            reach_in = (w @ reach_in > 0).float()
            if i == 0 and made.context_layer is not None:  # every first-layer unit sees the context
                reach_in = torch.ones_like(reach_in)
            ins.append(reach_in)
        reach_out = torch.ones(weights[-1].shape[0])
        outs = []
        for w in reversed(weights[1:]):
            reach_out = (w.T @ reach_out > 0).float()
            outs.insert(0, reach_out)
        for i, (a, b) in enumerate(zip(ins, outs)):
            assert a.all(), f"layer {i}: a hidden unit sees no input"
            assert b.all(), f"layer {i}: a hidden unit reaches no output"
        made.resample()


def test_degrees_and_masks_as_boolean_products():
    deg = masks.input_degrees(4, "natural")
    hidden = masks.hidden_degrees(4, [5, 5])
    m = masks.made_masks(deg, hidden)
    # the boolean product of the masks is exactly the strictly-lower-triangular connectivity
    path = (m[2].int() @ m[1].int() @ m[0].int()) > 0
    assert torch.equal(path, deg[:, None] > deg[None, :])


def test_bad_arguments():
    with pytest.raises(ValueError, match="permutation"):
        masks.input_degrees(3, [0, 0, 1])
    with pytest.raises(ValueError, match="ordering"):
        masks.input_degrees(3, "sideways")
    with pytest.raises(ValueError, match="equal hidden widths"):
        MADE(3, (4, 5), residual=True)


def test_one_dimensional_made_is_a_constant():
    made = MADE(1, (4,), context_dim=2)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(torch.randn_like(p))
    a = made(torch.randn(3, 1), torch.zeros(2))[0]
    torch.testing.assert_close(a, a[:1].expand(3, 1))


def test_masked_weight_cache_follows_parameter_updates():
    made = MADE(3, (8,), num_params=1)
    layer = made.output
    with torch.no_grad():
        w1 = layer.masked_weight()
        assert layer.masked_weight() is w1
        layer.weight.add_(1.0)
        w2 = layer.masked_weight()
    assert w2 is not w1
    torch.testing.assert_close(w2, layer.weight.detach() * layer.mask)


def test_maf_slow_direction_matches_sequential_definition():
    torch.manual_seed(0)
    flow = pf.MAF(D, (16, 16), ordering="random", seed=4)
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    z = torch.randn(7, D)
    x = flow(z)
    # each x_d must satisfy z_d = x_d exp(s_d(x_<d)) + t_d(x_<d)
    z2, _ = flow.inverse_and_log_det(x)
    torch.testing.assert_close(z2, z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(ordering="random", seed=1),
        dict(hidden_degrees="random", seed=2),
        dict(context_dim=3),
        dict(hidden=(3, 2)),
    ],
    ids=["natural", "random-order", "random-degrees", "context", "narrow"],
)
@pytest.mark.parametrize("layer", [pf.MAF, pf.IAF])
def test_fast_slow_direction_equals_the_recursion(layer, kw):
    """The one-unit-at-a-time inversion (no gradients) equals the D-pass recursion (with gradients)."""
    kw = dict(kw)
    torch.manual_seed(0)
    flow = layer(D, kw.pop("hidden", (10, 7)), **kw)

    def randomize():
        for p in flow.parameters():
            p.add_(0.3 * torch.randn_like(p))

    with torch.no_grad():
        randomize()
    ctx = torch.randn(5, 3) if "context_dim" in kw else None
    v = torch.randn(5, D)
    slow = flow.forward_and_log_det if flow.fast == "inverse" else flow.inverse_and_log_det
    u_rec, ld_rec = slow(v, ctx)
    assert u_rec.requires_grad  # the recursion ran
    with torch.no_grad():
        u_fast, ld_fast = slow(v, ctx)
        torch.testing.assert_close(u_fast, u_rec, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ld_fast, ld_rec, atol=1e-5, rtol=1e-5)
        randomize()  # the cached plan must follow parameter updates
        flow.inversion = "recursive"
        u_rec2, _ = slow(v, ctx)
        flow.inversion = "auto"
        torch.testing.assert_close(slow(v, ctx)[0], u_rec2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(ordering="random", hidden_degrees="random", seed=0), dict(residual=True), dict(ordering="reversed")],
    ids=["spread", "random", "residual", "reversed"],
)
def test_every_output_of_a_conditional_made_depends_on_the_context(kw):
    # The first variable of the ordering too: its outputs see the context through degree-0 hidden units.
    torch.manual_seed(0)
    made = MADE(D, (16, 16), context_dim=3, **kw)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, ctx = torch.randn(8, D), torch.randn(8, 3)  # several points: a ReLU unit may be off at one of them
    for _ in range(3):
        jac = torch.autograd.functional.jacobian(lambda c: torch.stack(made(x, c)), ctx)  # (P, 8, D, 8, C)
        assert bool((jac.abs().sum((1, 3, 4)) > 0).all()), "an output does not depend on the context"
        if "seed" in kw:
            made.resample()
        else:
            break


def test_the_slow_direction_strategy_is_a_public_switch():
    torch.manual_seed(0)
    layer = pf.MAF(D, (16,), ordering="random")
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    v = torch.randn(4, D)
    results = {}
    for mode in ("auto", "sequential", "recursive"):
        layer.inversion = mode
        with torch.no_grad():
            results[mode] = layer(v.clone())
    torch.testing.assert_close(results["sequential"], results["recursive"], atol=1e-5, rtol=1e-5)
    layer.inversion = "sequential"
    with pytest.raises(ValueError, match="no gradients"):
        layer(v.clone())  # the parameters want gradients
    with pytest.raises(ValueError, match="inversion must be one of"):
        layer.inversion = "fast"
    residual = pf.MAF(D, (8, 8), residual=True, inversion="sequential")
    with torch.no_grad(), pytest.raises(ValueError, match="needs a conditioner with invert"):
        residual(v.clone())
