"""Order-agnostic training and ensembles over MADE orderings (Germain et al. 2015, sections 3.2 and 3.3).

Training a MADE (or a MAF made of MADEs) with a new random ordering and/or new hidden degrees per minibatch
makes one network good for many orderings; at test time the density is averaged over K of them:
``p(x) ~= (1/K) sum_k p(x | ordering_k)``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch

from .base import FlowLike
from .distributions import modules_of
from .nn import MADE
from .validation import positive_int

__all__ = ["mades", "resample", "ensemble_log_prob"]


def mades(obj) -> Iterator[MADE]:
    """Every :class:`~pyro_flows.nn.MADE` inside a module, a transform (list), or a distribution's transforms."""
    roots = [obj] if isinstance(obj, torch.nn.Module) and not isinstance(obj, FlowLike) else modules_of(obj)
    seen = set()
    for root in roots:
        for m in root.modules():
            if isinstance(m, MADE) and id(m) not in seen:
                seen.add(id(m))
                yield m


def resample(obj, *, ordering: bool = True, hidden: bool = True) -> int:
    """Draws new orderings and/or hidden degrees for every MADE in ``obj``; returns how many were resampled.

    Example:
        >>> import pyro_flows as pf
        >>> resample(pf.maf(4, num_layers=2, hidden_dims=(8,), seed=0))
        2
    """
    found = list(mades(obj))
    if not found:
        raise ValueError("resample found no MADE in the given flow or distribution")
    for m in found:
        m.resample(ordering=ordering, hidden=hidden)
    return len(found)


def _masks(found):
    return [[b.clone() for b in (m.degrees, *(layer.mask for layer in m.masked_layers() + [m.output]))] for m in found]


def _set_masks(found, saved):
    for m, tensors in zip(found, saved):
        for dst, src in zip((m.degrees, *(layer.mask for layer in m.masked_layers() + [m.output])), tensors):
            dst.copy_(src)


def ensemble_log_prob(
    distribution,
    x: torch.Tensor,
    num_orderings: int,
    *,
    ordering: bool = True,
    hidden: bool = True,
    seed: int | None = None,
) -> torch.Tensor:
    """``log (1/K) sum_k p_k(x)`` over ``K = num_orderings`` draws of every MADE's ordering/hidden degrees.

    The first member is the current masks; the masks are restored afterwards. ``seed`` makes the draws
    repeatable (it seeds torch's global generator for MADEs built without their own ``seed``).

    Example:
        >>> import torch, pyro_flows as pf
        >>> d = pf.flow_distribution(pf.maf(3, num_layers=1, hidden_dims=(8,)))
        >>> ensemble_log_prob(d, torch.zeros(2, 3), 4).shape
        torch.Size([2])
    """
    positive_int("num_orderings", num_orderings)
    found = list(mades(distribution))
    if not found:
        raise ValueError("ensemble_log_prob found no MADE in the distribution's transforms")
    saved = _masks(found)
    fork = torch.random.fork_rng() if seed is not None else contextlib.nullcontext()
    try:
        with fork:
            if seed is not None:
                torch.manual_seed(seed)
            members = []
            for k in range(num_orderings):
                if k:
                    for m in found:
                        m.resample(ordering=ordering, hidden=hidden)
                members.append(distribution.log_prob(x.clone()))
    finally:
        _set_masks(found, saved)
    return torch.logsumexp(torch.stack(members), 0) - math.log(num_orderings)
