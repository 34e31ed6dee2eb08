"""A variational autoencoder for binary images whose posterior is refined by flows (Kingma et al. 2016).

The model ``p(x, z) = N(z; 0, I) Bernoulli(x; decoder(z))`` and the guide ``q(z | x)``: the encoder gives
``(mu, scale, h)``; the posterior is ``Normal(mu, scale)`` (``"diagonal"``), refined by ``num_flows``
amortized planar steps whose parameters are offsets computed from ``h`` (``"planar"``), or by ``num_flows``
IAF steps, each a MADE that sees ``h`` as its context, with IAF's gated update and orderings reversed between
steps (``"iaf"``). The guide draws ``z`` with ONE ``pyro.sample`` of a flow distribution, so ``Trace_ELBO``
scores each sample from the pass that drew it (no sequential inverse).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ..compose import Compose
from ..data import binarize
from ..distributions import flow_distribution
from ..loop import LoopOptions, minibatches, run_loop
from ..ops import Affine, GatedAffine
from ..transforms import IAF, Planar
from ..validation import inputs_checked, is_finite_number, nonnegative_int, positive_int, positive_ints, trusting

__all__ = ["VAE", "log_likelihood", "negative_elbo", "fit_vae", "POSTERIORS", "FLOW_OPS"]

#: The posterior families.
POSTERIORS = ("diagonal", "planar", "iaf")


#: The ``flow_op`` choices of the IAF posterior.
FLOW_OPS = ("gated", "gated_published", "affine")


def _iaf_op(name: str, gate_bias: float):
    """A fresh op for one IAF step (``name`` checked by the VAE)."""
    return Affine() if name == "affine" else GatedAffine(gate_bias, normalized=name == "gated")


def _mlp(sizes: Sequence[int], last_activation: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Gated(nn.Module):
    """A gated (transposed) convolution, ``conv_h(x) * sigmoid(conv_g(x))`` (Dauphin et al.; Berg et al. 2018)."""

    def __init__(self, conv, *args, **kwargs):
        super().__init__()
        self.h, self.g = conv(*args, **kwargs), conv(*args, **kwargs)

    def forward(self, x):
        return self.h(x) * torch.sigmoid(self.g(x))


class _ConvEncoder(nn.Module):
    """Berg et al. 2018's MNIST encoder: six gated convolutions (5x5, the last 7x7) from 28x28 to ``h``."""

    def __init__(self, channels: int, context_dim: int):
        super().__init__()
        c = nn.Conv2d
        self.net = nn.Sequential(
            _Gated(c, channels, 32, 5, 1, 2),
            _Gated(c, 32, 32, 5, 2, 2),
            _Gated(c, 32, 64, 5, 1, 2),
            _Gated(c, 64, 64, 5, 2, 2),
            _Gated(c, 64, 64, 5, 1, 2),
            _Gated(c, 64, context_dim, 7, 1, 0),
        )

    def forward(self, x):
        batch = x.shape[:-3]
        return self.net(x.reshape(-1, *x.shape[-3:])).reshape(*batch, -1)


class _ConvDecoder(nn.Module):
    """Berg et al. 2018's MNIST decoder: six gated transposed convolutions from ``z`` to 28x28, a 1x1 to logits."""

    def __init__(self, z_dim: int, channels: int):
        super().__init__()
        t = nn.ConvTranspose2d
        self.net = nn.Sequential(
            _Gated(t, z_dim, 64, 7, 1, 0),
            _Gated(t, 64, 64, 5, 1, 2),
            _Gated(t, 64, 32, 5, 2, 2, 1),
            _Gated(t, 32, 32, 5, 1, 2),
            _Gated(t, 32, 32, 5, 2, 2, 1),
            _Gated(t, 32, 32, 5, 1, 2),
            nn.Conv2d(32, channels, 1),
        )

    def forward(self, z):
        batch = z.shape[:-1]
        return self.net(z.reshape(-1, z.shape[-1], 1, 1)).reshape(*batch, -1)


class VAE(nn.Module):
    """A VAE for binary images with a diagonal, planar or IAF posterior, trained with Pyro's SVI.

    ``vae.model(x)`` and ``vae.guide(x)`` take a minibatch of 0/1 images of ``image_shape``; both accept
    ``beta`` (KL warm-up: the latent site's log-densities are scaled by it) and ``scale`` (dataset-size
    scaling of the whole minibatch). A plain ``nn.Module`` registered with ``pyro.module`` in both, so its
    parameters are the module's (``state_dict`` saves and restores the whole model).

    Args:
        image_shape: shape of one image, e.g. ``(1, 28, 28)``.
        z_dim: latent size.
        posterior: ``"diagonal"``, ``"planar"`` or ``"iaf"``.
        num_flows: flow steps of the ``"planar"`` and ``"iaf"`` posteriors.
        hidden_dims: hidden widths of the MLP encoder (the decoder mirrors them).
        context_dim: size of the encoder's context ``h`` given to the flow steps.
        flow_hidden_dims: hidden widths of each IAF step's MADE (the context enters its first layer).
        flow_op: the elementwise op of each IAF step: ``"gated"`` (default; IAF's gated update with the gate
            normalized so that a new step is exactly the identity, :class:`~pyro_flows.ops.GatedAffine`),
            ``"gated_published"`` (the paper's gate: a new step is the contraction ``z -> sigmoid(gate_bias) z``,
            so four fresh steps start ``log q`` far too high and training must first undo it: at 6,000 steps it
            trails the diagonal posterior by 5.1 nats of test NLL where the default leads it by 1.8,
            ``bench/results/vae_steps_cpu.md``)
            or ``"affine"`` (:class:`~pyro_flows.ops.Affine`, also the identity at initialization).
        gate_bias: the gated ops' bias (1, as in Kingma et al. 2016 and Berg et al. 2018).
        arch: ``"mlp"`` (``hidden_dims``) or ``"conv"``, the gated convolutional encoder and decoder of Berg et
            al. 2018 (28x28 images; their table uses ``z_dim=64``, ``context_dim=256``, 4 IAF steps of 320).

    Example:
        >>> vae = VAE((1, 4, 4), z_dim=2, posterior="iaf", num_flows=2, hidden_dims=(16,), context_dim=8)
        >>> q = vae.posterior(torch.zeros(3, 1, 4, 4))
        >>> q.rsample().shape
        torch.Size([3, 2])

    References:
        Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling, Improving Variational Inference with Inverse
        Autoregressive Flow, arXiv:1606.04934; Rezende & Mohamed, arXiv:1505.05770; van den Berg et al.,
        Sylvester Normalizing Flows, arXiv:1803.05649.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (1, 28, 28),
        *,
        z_dim: int = 64,
        posterior: str = "iaf",
        num_flows: int = 4,
        hidden_dims: Sequence[int] = (512, 512),
        context_dim: int = 256,
        flow_hidden_dims: Sequence[int] = (320,),
        arch: str = "mlp",
        flow_op: str = "gated",
        gate_bias: float = 1.0,
    ):
        super().__init__()
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        self.image_shape = tuple(positive_ints("image_shape", tuple(image_shape)))
        self.z_dim = positive_int("z_dim", z_dim)
        self.posterior_kind = posterior
        hidden = positive_ints("hidden_dims", tuple(hidden_dims))
        self.context_dim = positive_int("context_dim", context_dim)
        pixels = math.prod(self.image_shape)
        if arch == "mlp":
            self.encoder: nn.Module = _mlp((pixels, *hidden, self.context_dim), last_activation=True)
            self.decoder: nn.Module = _mlp((self.z_dim, *reversed(hidden), pixels), last_activation=False)
        elif arch == "conv":
            if tuple(self.image_shape[1:]) != (28, 28):
                raise ValueError(f"arch='conv' is Berg et al.'s 28x28 architecture, got images {self.image_shape}")
            self.encoder = _ConvEncoder(self.image_shape[0], self.context_dim)
            self.decoder = _ConvDecoder(self.z_dim, self.image_shape[0])
        else:
            raise ValueError(f"arch must be 'mlp' or 'conv', got {arch!r}")
        self.arch = arch
        self.mu = nn.Linear(self.context_dim, self.z_dim)
        self.raw_scale = nn.Linear(self.context_dim, self.z_dim)
        k = positive_int("num_flows", num_flows)
        if flow_op not in FLOW_OPS:
            raise ValueError(f"flow_op must be one of {FLOW_OPS}, got {flow_op!r}")
        if posterior != "iaf" and (flow_op, gate_bias) != ("gated", 1.0):
            raise ValueError(f"flow_op and gate_bias configure the iaf posterior; posterior={posterior!r} has none")
        if flow_op == "affine" and gate_bias != 1.0:
            raise ValueError("gate_bias sets the gated ops' sigmoid; flow_op='affine' has none")
        self.flow_op = flow_op
        if posterior == "diagonal":
            self.flow = None
        elif posterior == "planar":
            self.flow = Compose([Planar(self.z_dim, context_dim=self.context_dim) for _ in range(k)])
        else:
            self.flow = Compose(
                [
                    IAF(
                        self.z_dim,
                        tuple(flow_hidden_dims),
                        context_dim=self.context_dim,
                        op=_iaf_op(flow_op, gate_bias),
                        ordering=("natural", "reversed")[i % 2],
                    )
                    for i in range(k)
                ]
            )

    def check_images(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` if it is a floating tensor of 0/1 images of ``image_shape`` (``TypeError``/``ValueError``
        otherwise). The 0/1 test (a host sync) is skipped inside :func:`fit_vae`, which tests all its data
        once (:func:`pyro_flows.validation.inputs_checked`)."""
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"VAE expected a floating tensor of 0/1 images, got {getattr(x, 'dtype', type(x))}")
        if x.dim() < len(self.image_shape) + 1 or tuple(x.shape[-len(self.image_shape) :]) != self.image_shape:
            raise ValueError(
                f"VAE expected images of shape (N, {', '.join(map(str, self.image_shape))}), got {tuple(x.shape)}"
            )
        if not inputs_checked() and not bool(((x == 0) | (x == 1)).all()):
            raise ValueError(
                "VAE's Bernoulli likelihood expected binary images (0s and 1s); binarize them first "
                "(pyro_flows.data.binarize for dynamic binarization)"
            )
        return x

    def encode(self, x: torch.Tensor):
        """``(mu, scale, h)`` for a batch of images."""
        h = self.encoder(x.flatten(-len(self.image_shape)) if self.arch == "mlp" else x)
        return self.mu(h), nn.functional.softplus(self.raw_scale(h)) + 1e-4, h

    def posterior(self, x: torch.Tensor):
        """The guide's distribution ``q(z | x)`` for a batch: a flow distribution over ``z``."""
        mu, scale, h = self.encode(self.check_images(x))
        base = dist.Normal(mu, scale).to_event(1)
        return base if self.flow is None else flow_distribution(self.flow, base=base, context=h)

    def prior(self, batch_shape) -> dist.TorchDistribution:
        """``p(z) = N(0, I)``."""
        p = next(self.parameters())
        return dist.Normal(p.new_zeros(()), 1.0).expand(torch.Size(batch_shape) + (self.z_dim,)).to_event(1)

    def likelihood(self, z: torch.Tensor) -> dist.TorchDistribution:
        """``p(x | z)``: independent Bernoulli pixels with logits from the decoder."""
        logits = self.decoder(z).reshape(*z.shape[:-1], *self.image_shape)
        return dist.Bernoulli(logits=logits).to_event(len(self.image_shape))

    def model(self, x: torch.Tensor, *, beta: float = 1.0, scale: float = 1.0) -> None:
        """The generative model for a minibatch ``x`` (observed)."""
        pyro.module("vae", self)
        x = self.check_images(x)
        with pyro.plate("data", x.shape[0]), poutine.scale(scale=scale):
            with poutine.scale(scale=beta):
                z = pyro.sample("z", self.prior((x.shape[0],)))
            pyro.sample("x", self.likelihood(z), obs=x)

    def guide(self, x: torch.Tensor, *, beta: float = 1.0, scale: float = 1.0) -> None:
        """The amortized posterior: ONE ``pyro.sample`` of ``q(z | x)``."""
        pyro.module("vae", self)
        with pyro.plate("data", x.shape[0]), poutine.scale(scale=scale * beta):
            pyro.sample("z", self.posterior(x))


@torch.no_grad()
def log_likelihood(vae: VAE, x: torch.Tensor, *, num_samples: int = 5000, batch_size: int = 500) -> torch.Tensor:
    """Importance-sampled ``log p(x) ~ logsumexp_k [log p(x, z_k) - log q(z_k | x)] - log K`` per data point.

    Each image is encoded once; its K samples are drawn from the same guide distribution in chunks of
    ``batch_size`` and scored from the pass that drew them (no sequential inverse). Above the ELBO, up to Monte
    Carlo error; equal to a one-sample ELBO estimate at ``K = 1``.

    Args:
        vae: the model.
        x: 0/1 images, shape ``(N, *image_shape)``.
        num_samples: K.
        batch_size: samples per chunk (memory: ``batch_size * N`` latents and decoded images at once).

    Returns:
        ``log p(x)`` per image, shape ``(N,)``.
    """
    k = positive_int("num_samples", num_samples)
    chunk = positive_int("batch_size", batch_size)
    q = vae.posterior(x)
    terms = []
    for start in range(0, k, chunk):
        z = q.sample(torch.Size([min(chunk, k - start)]))  # (k', N, z_dim)
        log_w = vae.prior(z.shape[:-1]).log_prob(z) + vae.likelihood(z).log_prob(x) - q.log_prob(z)
        terms.append(log_w)
    return torch.logsumexp(torch.cat(terms), dim=0) - math.log(k)


def negative_elbo(vae: VAE, x: torch.Tensor, *, batch_size: int = 500, num_particles: int = 1) -> float:
    """The mean negative ELBO per image (nats) of ``x``, estimated with ``num_particles`` samples each, without
    gradients, in chunks of ``batch_size`` images (the estimate ``Trace_ELBO`` gives on ``vae.model`` and
    ``vae.guide``, computed directly)."""
    particles = positive_int("num_particles", num_particles)
    total = 0.0
    with torch.no_grad():
        for chunk in x.split(positive_int("batch_size", batch_size)):
            log_lik, kl = _elbo_terms(vae, chunk, particles)
            total += float((kl - log_lik).sum()) / particles
    return total / len(x)


def _elbo_terms(vae: VAE, x: torch.Tensor, num_particles: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log p(x | z), log q(z | x) - log p(z))`` per sample ``z ~ q(z | x)`` (reparametrized), the two terms of
    the ELBO that ``Trace_ELBO`` forms from ``vae.model`` and ``vae.guide``, without Pyro's tracing: one draw
    per image (shape ``(N,)``), or ``num_particles`` (shape ``(num_particles, N)``)."""
    q = vae.posterior(x)
    z = q.rsample() if num_particles is None else q.rsample(torch.Size([num_particles]))
    return vae.likelihood(z).log_prob(x), q.log_prob(z) - vae.prior(z.shape[:-1]).log_prob(z)


def _training_loss(vae: VAE, x: torch.Tensor, beta: float, free_bits: float) -> torch.Tensor:
    """The minibatch mean of ``-log p(x | z) + beta * KL`` with one sample each: the negative ELBO (the loss of
    ``Trace_ELBO`` on ``vae.model``/``vae.guide`` with ``beta``, divided by the batch size), or with
    ``free_bits > 0`` the loss ``-E[log p(x | z)] + beta * max(free_bits, E[KL])``."""
    log_lik, kl = _elbo_terms(vae, x)
    mean_kl = kl.mean()
    return beta * (torch.clamp(mean_kl, min=free_bits) if free_bits else mean_kl) - log_lik.mean()


def fit_vae(
    vae: VAE,
    train: torch.Tensor,
    valid: torch.Tensor | None = None,
    *,
    steps: int | None = 10000,
    batch_size: int = 100,
    lr: float = 1e-3,
    optimizer: str = "adamax",
    lr_warmup_steps: int = 0,
    kl_warmup_steps: int = 0,
    eval_every: int = 500,
    patience: int | None = 20,
    max_seconds: float | None = None,
    dynamic_binarization: bool = False,
    clip_grad: float | None = None,
    free_bits: float = 0.0,
    seed: int | None = None,
    progress: bool = True,
):
    """Trains a :class:`VAE` by maximizing the ELBO, through the same loop as
    :func:`pyro_flows.fit` (:func:`pyro_flows.loop.run_loop`: validation every ``eval_every`` steps, early
    stopping that keeps the best parameters, a time budget, a clear error on NaN that restores them).

    Each step: a minibatch (a fresh Bernoulli draw of ``pixels / 255`` with ``dynamic_binarization``, from
    uint8 ``train``), ``beta = min(1, step / kl_warmup_steps)`` (linear KL warm-up), the learning rate warmed
    up linearly over ``lr_warmup_steps``, the negative ELBO per image as the loss: the loss ``Trace_ELBO`` forms from
    ``vae.model`` and ``vae.guide``, computed directly (no Pyro trace or ``pyro.module`` call per step, the cost
    measured in ``bench/bench_vae_overhead.py``). Validation: the negative ELBO
    per image with ``beta = 1`` (``valid`` as given: binarize it once, with a fixed seed).

    With ``free_bits = lam > 0`` the training loss is ``-E[log p(x | z)] + beta * max(lam, KL)``, ``KL`` the
    minibatch mean of the one-sample estimate ``log q(z | x) - log p(z)`` (Kingma et al. 2016's free bits with
    one group: a flow posterior has no per-dimension KL): the first ``lam`` nats of KL per image are free, which
    keeps the posterior from collapsing onto the prior early on. Validation always reports the true -ELBO.

    Returns:
        :class:`~pyro_flows.FitResult` (losses in nats per image).
    """
    if not is_finite_number(free_bits) or free_bits < 0:
        raise ValueError(f"free_bits must be a number >= 0 (nats per image), got {free_bits!r}")
    if optimizer not in ("adam", "adamax"):
        raise ValueError(f"optimizer must be 'adam' or 'adamax', got {optimizer!r}")
    nonnegative_int("lr_warmup_steps", lr_warmup_steps)
    nonnegative_int("kl_warmup_steps", kl_warmup_steps)
    batch_size = min(positive_int("batch_size", batch_size), len(train))
    if dynamic_binarization:
        if train.dtype != torch.uint8:
            raise TypeError("dynamic_binarization expects uint8 pixels in train (e.g. pyro_flows.data.mnist())")
    else:
        vae.check_images(train)
    if valid is not None:
        vae.check_images(valid)
    options = LoopOptions(
        steps=steps, eval_every=eval_every, patience=patience, max_seconds=max_seconds, progress=progress
    )
    params = list(vae.parameters())
    device = params[0].device
    opt = (torch.optim.Adamax if optimizer == "adamax" else torch.optim.Adam)(params, lr=lr)
    warmup = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda k: min(1.0, (k + 1) / lr_warmup_steps) if lr_warmup_steps else 1.0
    )
    batches = minibatches(len(train), batch_size, seed=seed)

    def step(k: int) -> float:
        x = train[next(batches)].to(device)
        if dynamic_binarization:
            x = binarize(x)
        beta = min(1.0, k / kl_warmup_steps) if kl_warmup_steps else 1.0
        opt.zero_grad(set_to_none=True)
        loss = trusting(_training_loss, vae, x, beta, free_bits)
        value = loss.item()
        if math.isfinite(value):
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_grad)
            opt.step()
            warmup.step()
        return value

    def evaluate() -> float:
        assert valid is not None  # evaluate is only passed with validation data
        return trusting(negative_elbo, vae, valid.to(device))

    return run_loop(
        step,
        evaluate if valid is not None else None,
        [vae],
        options,
        desc="vae",
        hint=f"try a lower learning rate (lr={lr:g}), a longer warm-up or clip_grad",
        valid_label="validation negative ELBO",
    )
