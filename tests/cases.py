"""The registry of every public transform: one named factory per case, conditional variants included.

Each factory returns a :class:`Case` with a float32 transform whose parameters are randomized (so no layer
is the identity), a batch ``x`` of valid inputs and, for conditional transforms, a matching ``context``.
``tests/test_contract.py`` runs every check on every case; ``test_registry_is_complete`` there fails when a
public transform has no case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

import pyro_flows as pf

D = 5  # event size: small enough for float64 autograd Jacobians
C = 3  # context size
BATCH = 4


@dataclass
class Case:
    transform: object
    x: torch.Tensor
    context: torch.Tensor | None = None

    @property
    def event_shape(self):
        return tuple(self.transform.event_shape)


def randomize(module, scale=0.5):
    """Perturbs every floating parameter so zero-initialized layers stop being the identity."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn_like(p))
    return module


def _case(build: Callable[[int | None], object], *, conditional=False, prepare=None, scale=0.5):
    def factory():
        torch.manual_seed(0)
        t = build(C if conditional else None)
        if prepare is not None:  # before randomizing: ActNorm initializes only while untouched
            prepare(t)
        t = randomize(t, scale)
        x = torch.randn(BATCH, *t.event_shape)
        ctx = torch.randn(BATCH, C) if conditional else None
        return Case(t, x, ctx)

    return factory


def _warm_batchnorm(t):
    """Random running statistics, then eval mode (the train-mode contract is in test_batchnorm.py)."""
    with torch.no_grad():
        for m in t.modules():
            if isinstance(m, pf.BatchNorm):
                m.running_mean.copy_(torch.randn_like(m.running_mean))
                m.running_var.uniform_(0.5, 2.0)
    t.eval()


CASES: dict[str, Callable[[], Case]] = {}


def _add(name, build, *, conditional_too=False, prepare=None, scale=0.5):
    """Registers ``name`` (and ``name-conditional``); deep stacks get smaller perturbations (``scale``) so
    their float32 round-off stays near 1e-5."""
    CASES[name] = _case(build, prepare=prepare, scale=scale)
    if conditional_too:
        CASES[name + "-conditional"] = _case(build, conditional=True, prepare=prepare, scale=scale)


_add("Planar", lambda c: pf.Planar(D, context_dim=c, hidden_dims=(8,)), conditional_too=True)
_add("Radial", lambda c: pf.Radial(D, context_dim=c, hidden_dims=(8,)), conditional_too=True)
_add("AdditiveCoupling", lambda c: pf.AdditiveCoupling(D, context_dim=c, hidden_dims=(8,)), conditional_too=True)
_add("AffineCoupling", lambda c: pf.AffineCoupling(D, context_dim=c, hidden_dims=(8,)), conditional_too=True)
_add("AffineCoupling-alternating", lambda c: pf.AffineCoupling(D, pf.masks.alternating(D), hidden_dims=(8,)))
_add("AffineCoupling-exp", lambda c: pf.AffineCoupling(D, scale="exp", hidden_dims=(8,)))
_add("AffineCoupling-sigmoid", lambda c: pf.AffineCoupling(D, scale="sigmoid", hidden_dims=(8,)))
_add(
    "Coupling",
    lambda c: pf.Coupling(D, torch.tensor([False, True, False, True, True]), op=pf.ops.Affine(), hidden_dims=(8,)),
)
_add("Rescale", lambda c: pf.Rescale(D, context_dim=c, hidden_dims=(8,)), conditional_too=True)
_add("BatchNorm", lambda c: pf.BatchNorm(D), prepare=_warm_batchnorm)
# Logit's forward takes data in [0, 1]; its inverse (a scaled sigmoid) takes any real input, like the cases.
_add("Logit-inverse", lambda c: pf.Logit(D, lam=0.05).inv)
_add("Logit-inverse-image", lambda c: pf.Logit((2, 2, 2), lam=1e-6).inv)
# MuLaw is a bijection of the real line (mapping [-1, 1] onto itself), so the cases' real x are valid inputs.
_add("MuLaw", lambda c: pf.MuLaw(D, mu=255.0))
_add("MuLaw-inverse", lambda c: pf.MuLaw(D, mu=255.0).inv)
_add("Permute", lambda c: pf.Permute([3, 0, 4, 1, 2]))
_add("Reverse", lambda c: pf.Reverse(D))
_add(
    "Inverse-AffineCoupling",
    lambda c: pf.Inverse(pf.AffineCoupling(D, context_dim=c, hidden_dims=(8,))),
    conditional_too=True,
)
_add("Inverse-Planar", lambda c: pf.Inverse(pf.Planar(D)))
_add("Compose", lambda c: pf.Compose([pf.Planar(D), pf.Reverse(D), pf.AffineCoupling(D, hidden_dims=(8,))]))
# Three stacked planar layers with random hypernetworks stretch some directions ~40x (w^T u_hat up to 37 at
# scale 0.5), more than a float32 round trip at 1e-4 tolerates; 0.3 keeps it well conditioned.
_add("planar", lambda c: pf.planar(D, num_layers=3, context_dim=c), conditional_too=True, scale=0.3)
_add("radial", lambda c: pf.radial(D, num_layers=3, context_dim=c), conditional_too=True)
_add("nice", lambda c: pf.nice(D, num_layers=4, hidden_dims=(8,), context_dim=c), conditional_too=True)
_add("realnvp", lambda c: pf.realnvp(D, num_layers=4, hidden_dims=(8,), context_dim=c), conditional_too=True, scale=0.2)
_add(
    "realnvp-batchnorm",
    lambda c: pf.realnvp(D, num_layers=3, hidden_dims=(8,), batch_norm=True),
    prepare=_warm_batchnorm,
    scale=0.2,
)
_add("MAF", lambda c: pf.MAF(D, (12,), context_dim=c), conditional_too=True)
_add("IAF", lambda c: pf.IAF(D, (12,), context_dim=c), conditional_too=True)
_add(
    "AffineAutoregressive",
    lambda c: pf.AffineAutoregressive(
        D, (12, 12), fast="forward", context_dim=c, ordering="random", hidden_degrees="random", seed=3
    ),
    conditional_too=True,
)
_add("IAF-gated", lambda c: pf.IAF(D, (12,), op=pf.ops.GatedAffine(), context_dim=c), conditional_too=True)
_add("Coupling-gated", lambda c: pf.Coupling(D, op=pf.ops.GatedAffine(), hidden_dims=(8,)))
_add("MAF-residual", lambda c: pf.MAF(D, (12, 12, 12), residual=True, ordering=[4, 1, 0, 3, 2]))
_add("maf", lambda c: pf.maf(D, num_layers=3, hidden_dims=(12,), context_dim=c), conditional_too=True, scale=0.2)
_add(
    "iaf",
    lambda c: pf.iaf(D, num_layers=3, hidden_dims=(12,), context_dim=c, ordering="random", seed=0),
    conditional_too=True,
    scale=0.2,
)
_add(
    "maf-batchnorm",
    lambda c: pf.maf(D, num_layers=2, hidden_dims=(12,), batch_norm=True),
    prepare=_warm_batchnorm,
    scale=0.2,
)


# --- sequences (C, T) and images (C, H, W) through the other autoregressive conditioners ----------------------
SEQ = (2, 12)
WAVENET = dict(residual_channels=4, skip_channels=4, dilations=(1, 2, 4))
_add("MAF-wavenet", lambda c: pf.MAF(conditioner=pf.nn.WaveNet(*SEQ, context_dim=c, **WAVENET)), conditional_too=True)
_add(
    "IAF-wavenet",
    lambda c: pf.IAF(conditioner=pf.nn.WaveNet(*SEQ, kernel_size=3, context_dim=c, **WAVENET)),
    conditional_too=True,
)
# global (1) and local (1 x 2, upsampled to T) conditioning: a C = 3 wide context, so conditional only
CASES["MAF-wavenet-local-conditional"] = _case(
    lambda c: pf.MAF(conditioner=pf.nn.WaveNet(*SEQ, context_dim=1, local_context=(1, 2), **WAVENET)),
    conditional=True,
)
_add(
    "MAF-recurrent",
    lambda c: pf.MAF(conditioner=pf.nn.RecurrentConditioner(*SEQ, hidden_size=6, context_dim=c)),
    conditional_too=True,
)
_add(
    "IAF-pixelcnn",
    lambda c: pf.IAF(conditioner=pf.nn.PixelCNN(2, 3, 3, hidden_channels=4, num_layers=2, context_dim=c)),
    conditional_too=True,
)
_add(
    "maf-wavenet",
    lambda c: pf.maf(SEQ, num_layers=2, conditioner=lambda i: pf.nn.WaveNet(*SEQ, context_dim=c, **WAVENET)),
    conditional_too=True,
    scale=0.2,
)

# --- images (C, H, W): small enough for float64 autograd Jacobians (32 dims) --------------------------------
IMG = (2, 4, 4)
IMG_NET = dict(hidden_channels=4, num_blocks=1)


def _init_actnorm(t):
    """ActNorm's data-dependent initialization on a non-standard batch (so it is not the identity), in the
    sampling direction: every ActNorm then standardizes what reaches it from the base side, which keeps the
    float64 Jacobian of a deep stack well conditioned."""
    bound = t if t.context_dim is None else t.condition(torch.randn(32, t.context_dim))
    with torch.no_grad():
        bound(torch.randn(32, *t.event_shape) * 2 + 1)
    assert all(bool(m.initialized) for m in t.modules() if isinstance(m, pf.ActNorm))


_add("ActNorm", lambda c: pf.ActNorm(IMG), prepare=_init_actnorm)
_add("BatchNorm-image", lambda c: pf.BatchNorm(IMG), prepare=_warm_batchnorm)
_add("InvertibleConv1x1", lambda c: pf.InvertibleConv1x1(IMG))
_add("InvertibleConv1x1-plain", lambda c: pf.InvertibleConv1x1(IMG, lu=False))
_add(
    "AffineCoupling-checkerboard",
    lambda c: pf.AffineCoupling(IMG, pf.masks.checkerboard(IMG, flip=True), context_dim=c, **IMG_NET),
    conditional_too=True,
)
_add(
    "AffineCoupling-channels-sigmoid",
    lambda c: pf.AffineCoupling(IMG, pf.masks.channels(IMG), scale="sigmoid", **IMG_NET),
)
_add("Squeeze", lambda c: pf.Squeeze(pf.AffineCoupling((8, 2, 2), pf.masks.channels((8, 2, 2)), **IMG_NET)))
_add("FactorOut", lambda c: pf.FactorOut(pf.AffineCoupling((1, 4, 4), **IMG_NET), 1))
_add(
    "realnvp_image",
    lambda c: pf.realnvp_image(IMG, levels=2, batch_norm=True, context_dim=c, **IMG_NET),
    conditional_too=True,
    prepare=_warm_batchnorm,
    scale=0.05,
)
_add(
    "glow",
    lambda c: pf.glow(IMG, levels=2, depth=2, context_dim=c, **IMG_NET),
    conditional_too=True,
    prepare=_init_actnorm,
    scale=0.05,
)
