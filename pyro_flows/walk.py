"""One walk over a flow: its layers in sampling order, each with whether it runs inverted and its context.

:func:`layers` is the one place that looks inside a flow. A pyro_flows transform describes itself (its
``layers()`` method: a layer yields itself, an :class:`~pyro_flows.Inverse` reverses and flips its
transform's layers, a :class:`~pyro_flows.Compose` concatenates its parts', a bound view adds its context);
torch's and Pyro's own compositions and inverses are looked through here, and any other transform is a leaf.

Example:
    >>> import pyro_flows as pf
    >>> flow = pf.Compose([pf.Planar(2), pf.MAF(2, (8,)).inv])
    >>> [(type(step.layer).__name__, step.inverted, step.path) for step in layers(flow)]
    [('Planar', False, 'parts[0]'), ('MAF', True, 'parts[1].inv')]
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch.distributions import ComposeTransform
from torch.distributions.transforms import _InverseTransform

__all__ = ["Layer", "layers", "modules_of"]


class Layer(NamedTuple):
    """One layer of a flow, as met when the flow samples (runs its forward map).

    Attributes:
        layer: the layer (a :class:`~pyro_flows.Flow`, or a torch/Pyro transform that is no composition).
        inverted: whether the flow's forward map runs this layer's inverse.
        context: the context bound to the layer (``None`` when none is).
        path: where it sits, e.g. ``"parts[1].inv"``.
    """

    layer: Any
    inverted: bool
    context: torch.Tensor | None
    path: str

    def within(self, prefix: str, *, invert: bool = False, context: torch.Tensor | None = None) -> Layer:
        """This layer seen from an enclosing transform: ``prefix`` before its path, inverted once more if
        ``invert``, and ``context`` bound unless it has its own."""
        path = prefix + ("." + self.path if self.path and prefix and not self.path.startswith(".") else self.path)
        return Layer(
            self.layer,
            self.inverted != invert,
            self.context if self.context is not None else context,
            path,
        )


def layers(transform: Any) -> list[Layer]:
    """The layers of ``transform`` in sampling order (the order in which the forward map runs them)."""
    own = getattr(transform, "layers", None)
    if callable(own):  # a pyro_flows transform describes itself
        return own()
    if isinstance(transform, ComposeTransform):
        return [step.within(f"parts[{i}]") for i, part in enumerate(transform.parts) for step in layers(part)]
    if isinstance(transform, _InverseTransform):
        return [step.within(".inv", invert=True) for step in reversed(layers(transform.inv))]
    return [Layer(transform, False, None, "")]


def modules_of(distribution_or_transforms: Any) -> list[torch.nn.Module]:
    """The distinct modules (each layer, once) of a flow distribution's transforms, a transform, or a list of
    transforms, in sampling order: what holds the parameters a trainer optimizes and puts in train/eval mode.

    Example:
        >>> import pyro_flows as pf
        >>> d = pf.flow_distribution(pf.maf(2, num_layers=2, hidden_dims=(8,)))
        >>> [type(m).__name__ for m in modules_of(d)]
        ['MAF', 'MAF']
    """
    obj = distribution_or_transforms
    transforms: Iterable = getattr(obj, "transforms", None) or ([obj] if not isinstance(obj, (list, tuple)) else obj)
    found: dict[int, torch.nn.Module] = {}
    for transform in transforms:
        for step in layers(transform):
            if isinstance(step.layer, torch.nn.Module):
                found.setdefault(id(step.layer), step.layer)
    return list(found.values())
