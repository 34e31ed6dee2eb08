"""The VAE with a diagonal, planar or IAF posterior (pyro_flows.models): tiny, CPU, fast."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam

from pyro_flows.models import VAE, log_likelihood

SHAPE = (1, 4, 4)
POSTERIORS = ["diagonal", "planar", "iaf"]


def tiny(posterior, seed=0):
    torch.manual_seed(seed)
    return VAE(
        SHAPE, z_dim=3, posterior=posterior, num_flows=2, hidden_dims=(32,), context_dim=8, flow_hidden_dims=(16,)
    )


def images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    proto = (torch.rand(4, *SHAPE, generator=g) < 0.5).float()  # four prototypes with 5% flipped pixels
    x = proto[torch.randint(4, (n,), generator=g)]
    flip = (torch.rand(x.shape, generator=g) < 0.05).float()
    return (x + flip) % 2


def svi(vae, lr=1e-2, particles=1):
    pyro.clear_param_store()
    return SVI(vae.model, vae.guide, Adam({"lr": lr}), Trace_ELBO(num_particles=particles))


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_one_svi_step_changes_encoder_decoder_and_flow(posterior):
    vae = tiny(posterior)
    before = {n: p.detach().clone() for n, p in vae.named_parameters()}
    svi(vae).step(images())
    changed = {n.split(".")[0] for n, p in vae.named_parameters() if not torch.equal(p.detach(), before[n])}
    expected = {"encoder", "mu", "raw_scale", "decoder"} | ({"flow"} if posterior != "diagonal" else set())
    assert expected <= changed


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_the_elbo_improves_over_50_steps(posterior):
    vae, x = tiny(posterior), images()
    s = svi(vae, lr=2e-2)
    losses = [s.step(x) for _ in range(50)]
    assert sum(losses[-10:]) / 10 < sum(losses[:10]) / 10 - 1.0


@pytest.mark.parametrize("posterior", ["planar", "iaf"])
def test_the_guide_density_is_the_base_density_minus_the_steps_log_dets(posterior):
    vae, x = tiny(posterior), images(8)
    with torch.no_grad():
        for p in vae.flow.parameters():
            p.add_(0.3 * torch.randn_like(p))
    q = vae.posterior(x)
    z = q.rsample()
    mu, scale, h = vae.encode(x)
    z0, log_det = vae.flow.inverse_and_log_det(z.detach().clone(), h)  # recomputed: a new tensor misses the cache
    independent = torch.distributions.Normal(mu, scale).log_prob(z0).sum(-1) - log_det
    torch.testing.assert_close(q.log_prob(z), independent, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("posterior", POSTERIORS)
def test_importance_sampled_log_likelihood_bounds_the_elbo(posterior):
    vae, x = tiny(posterior), images(16)
    s = svi(vae, lr=2e-2)
    for _ in range(30):
        s.step(x)
    torch.manual_seed(1)
    with torch.no_grad():
        elbo = torch.stack([-Trace_ELBO().loss(vae.model, vae.guide, x) / len(x) * torch.ones(()) for _ in range(200)])
        one = torch.stack([log_likelihood(vae, x, num_samples=1).mean() for _ in range(200)])
        many = log_likelihood(vae, x, num_samples=500, batch_size=100).mean()
    # K = 1 is the ELBO's estimator; K = 500 lies above it
    assert abs(one.mean() - elbo.mean()) < 4 * (one.std() + elbo.std()) / 200**0.5 + 1e-3
    assert many > elbo.mean()


def test_one_svi_step_runs_each_iaf_network_once():
    vae = tiny("iaf")
    calls = []
    for part in vae.flow.parts:
        original = part.conditioner.forward
        part.conditioner.forward = lambda *a, f=original: calls.append(1) or f(*a)
    svi(vae).step(images())
    assert len(calls) == len(vae.flow.parts), f"{len(calls)} MADE passes for {len(vae.flow.parts)} IAF steps"


def test_bad_input_is_a_clear_error():
    vae = tiny("iaf")
    with pytest.raises(ValueError, match="shape"):
        vae.posterior(torch.zeros(2, 1, 5, 5))
    with pytest.raises(ValueError, match="binary"):
        vae.posterior(torch.full((2, *SHAPE), 0.5))
    with pytest.raises(TypeError, match="floating"):
        vae.posterior(torch.zeros(2, *SHAPE, dtype=torch.long))
    with pytest.raises(ValueError, match="needs a context"):
        vae.flow.forward_and_log_det(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="posterior must be one of"):
        VAE(SHAPE, posterior="sylvester")


def test_fit_vae_trains_with_warm_ups_and_keeps_the_best_parameters():
    from pyro_flows.models import fit_vae, negative_elbo

    data = images(192)
    vae, x, xv = tiny("iaf"), data[:128], data[128:]
    before = negative_elbo(vae, xv)
    result = fit_vae(
        vae,
        x,
        xv,
        steps=150,
        batch_size=32,
        lr=1e-2,
        lr_warmup_steps=20,
        kl_warmup_steps=50,
        eval_every=50,
        progress=False,
        seed=0,
    )
    assert result.steps_run == 150 and len(result.history.step) == 3
    after = negative_elbo(vae, xv, num_particles=64)
    assert after < before - 1.0
    assert result.best_valid == pytest.approx(min(result.history.valid_nll))


def test_fit_vae_binarizes_dynamically():
    from pyro_flows.models import fit_vae

    vae = tiny("diagonal")
    pixels = (images(64) * 200 + 20).to(torch.uint8)
    result = fit_vae(vae, pixels, steps=5, batch_size=16, dynamic_binarization=True, progress=False, seed=0)
    assert result.steps_run == 5
    with pytest.raises(TypeError, match="uint8"):
        fit_vae(vae, images(64), steps=1, dynamic_binarization=True, progress=False)


def _has(name):
    from pyro_flows import data

    return (data.data_dir() / name).is_file()


@pytest.mark.skipif(not _has("binarized_mnist.npz"), reason="binarized_mnist.npz is absent (PYRO_FLOWS_DATA)")
def test_binarized_mnist_loads_as_float_zeros_and_ones():
    from pyro_flows import data

    split = data.binarized_mnist()
    assert [len(p) for p in split] == [50000, 10000, 10000]
    assert split.train.shape[1:] == (1, 28, 28) and split.train.dtype == torch.float32
    assert abs(split.train.mean().item() - 0.13056) < 1e-4  # the fraction of ones the data README gives


@pytest.mark.skipif(not _has("binarized_mnist.npz"), reason="binarized_mnist.npz is absent (PYRO_FLOWS_DATA)")
def test_the_vae_command_writes_metrics_images_and_weights(tmp_path):
    import json

    from pyro_flows import cli

    out = tmp_path / "run"
    code = cli.main(
        [
            "vae",
            "--posterior",
            "planar",
            "--steps",
            "3",
            "--minutes",
            "1",
            "--n-eval",
            "20",
            "--is-samples",
            "5",
            "--eval-every",
            "3",
            "--hidden",
            "32",
            "--z-dim",
            "4",
            "--flows",
            "2",
            "--out",
            str(out),
            "--no-progress",
            "--quiet",
        ]
    )
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["posterior"] == "planar" and m["steps_run"] == 3 and m["is_samples"] == 5
    assert m["test_nll_is"] <= m["test_negative_elbo"] + 5.0  # an IS estimate, K = 5, lies near or below -ELBO
    assert {p.name for p in out.iterdir()} == {
        "metrics.json",
        "history.png",
        "reconstructions.png",
        "samples.png",
        "model.pt",
    }


def test_the_vae_command_refuses_a_missing_data_file(tmp_path, monkeypatch, capsys):
    from pyro_flows import cli

    monkeypatch.setenv("PYRO_FLOWS_DATA", str(tmp_path))
    assert cli.main(["vae", "--steps", "1", "--out", str(tmp_path / "x")]) == 1
    assert "binarized MNIST not found" in capsys.readouterr().err


def test_the_gated_conv_architecture_of_berg_et_al():
    torch.manual_seed(0)
    vae = VAE((1, 28, 28), z_dim=8, posterior="iaf", num_flows=2, context_dim=16, flow_hidden_dims=(16,), arch="conv")
    x = (torch.rand(3, 1, 28, 28) < 0.2).float()
    mu, scale, h = vae.encode(x)
    assert mu.shape == (3, 8) and h.shape == (3, 16)
    z = vae.posterior(x).rsample((2,))
    assert vae.likelihood(z).log_prob(x).shape == (2, 3)
    pyro.clear_param_store()
    SVI(vae.model, vae.guide, Adam({"lr": 1e-3}), Trace_ELBO()).step(x)
    with pytest.raises(ValueError, match="28x28"):
        VAE((1, 8, 8), arch="conv")


def test_free_bits_keep_the_first_nats_of_kl_free():
    from pyro_flows.models import fit_vae
    from pyro_flows.models.vae import _training_loss

    vae, x = tiny("iaf"), images(32)
    torch.manual_seed(0)
    plain = _training_loss(vae, x, 1.0, 0.0)
    torch.manual_seed(0)
    floored = _training_loss(vae, x, 1.0, 1e6)
    assert floored > plain and floored.requires_grad  # the KL term is floored at 1e6 nats
    result = fit_vae(vae, x, x, steps=10, batch_size=16, free_bits=2.0, eval_every=5, progress=False, seed=0)
    assert result.steps_run == 10
    with pytest.raises(ValueError, match="free_bits"):
        fit_vae(vae, x, steps=1, free_bits=-1.0, progress=False)


@pytest.mark.parametrize("flow_op", ["gated", "affine"])
def test_a_fresh_iaf_posterior_is_its_base(flow_op):
    # issue 18: every IAF step starts as the identity, so log q of a fresh posterior is the base's
    torch.manual_seed(0)
    vae = VAE(SHAPE, z_dim=4, posterior="iaf", num_flows=4, hidden_dims=(16,), context_dim=8, flow_op=flow_op)
    x = (torch.rand(6, *SHAPE) < 0.5).float()
    q = vae.posterior(x)
    z = q.sample((3,))
    mu, scale, _ = vae.encode(x)
    base = dist.Normal(mu, scale).to_event(1)
    torch.testing.assert_close(q.log_prob(z), base.log_prob(z), atol=1e-6, rtol=0)
    u = base.sample((3,))
    torch.testing.assert_close(vae.flow.condition(vae.encode(x)[2])(u), u, atol=1e-6, rtol=0)


def test_the_published_gate_contracts_at_initialization():
    torch.manual_seed(0)
    vae = VAE(SHAPE, z_dim=4, posterior="iaf", num_flows=4, hidden_dims=(16,), context_dim=8, flow_op="gated_published")
    x = (torch.rand(6, *SHAPE) < 0.5).float()
    u = torch.randn(6, 4)
    z = vae.flow.condition(vae.encode(x)[2])(u)
    torch.testing.assert_close(z, u * torch.sigmoid(torch.tensor(1.0)) ** 4, atol=1e-5, rtol=1e-5)


def test_flow_op_is_checked_and_never_ignored():
    with pytest.raises(ValueError, match="flow_op must be one of"):
        VAE(SHAPE, z_dim=2, posterior="iaf", hidden_dims=(8,), flow_op="spline")
    with pytest.raises(ValueError, match="flow_op='affine' has none"):
        VAE(SHAPE, z_dim=2, posterior="iaf", hidden_dims=(8,), flow_op="affine", gate_bias=2.0)
    with pytest.raises(ValueError, match="configure the iaf posterior"):
        VAE(SHAPE, z_dim=2, posterior="diagonal", hidden_dims=(8,), flow_op="affine")


@pytest.mark.parametrize("posterior", ["diagonal", "planar", "iaf"])
@pytest.mark.parametrize("beta", [1.0, 0.3])
def test_fit_vaes_direct_loss_is_trace_elbos_loss_and_gradient(posterior, beta):
    """fit_vae computes the ELBO without Pyro's trace; from one seed it equals Trace_ELBO on model and guide."""
    from pyro_flows.models.vae import _training_loss

    vae, x = tiny(posterior), images(7)
    params = list(vae.parameters())
    torch.manual_seed(1)
    expected = Trace_ELBO(max_plate_nesting=1).differentiable_loss(vae.model, vae.guide, x, beta=beta) / len(x)
    expected_grads = torch.autograd.grad(expected, params)
    torch.manual_seed(1)
    loss = _training_loss(vae, x, beta, 0.0)
    grads = torch.autograd.grad(loss, params)
    assert torch.allclose(loss, expected, atol=1e-5)
    for g, e in zip(grads, expected_grads):
        assert torch.allclose(g, e, atol=1e-6)


@pytest.mark.parametrize("posterior", ["diagonal", "iaf"])
def test_negative_elbo_is_trace_elbos_estimate(posterior):
    from pyro_flows.models import negative_elbo

    vae, x = tiny(posterior), images(6)
    torch.manual_seed(3)
    expected = Trace_ELBO(max_plate_nesting=1).loss(vae.model, vae.guide, x) / len(x)
    torch.manual_seed(3)
    assert negative_elbo(vae, x) == pytest.approx(expected, abs=1e-4)
    # Many particles: the same expectation, within Monte Carlo error.
    many = Trace_ELBO(num_particles=2000, vectorize_particles=True, max_plate_nesting=1).loss(vae.model, vae.guide, x)
    assert negative_elbo(vae, x, num_particles=2000) == pytest.approx(many / len(x), abs=0.1)
