"""When cached state is valid: the one rule, in one place.

pyro_flows caches state derived from a module's tensors: a flow's ``(x, y, log-det)`` entries, a
``MaskedLinear``'s masked weight, a MADE's sequential-inversion plan, ``BatchNorm``'s last batch statistics
and ``ActNorm``'s record that it has not been touched since construction. All follow one rule:

    cached state is valid while every tensor it was derived from is the same tensor object, over the same
    storage, at the same version.

:func:`key` captures that (object identity, ``data_ptr`` and autograd version counter of each tensor), so an
optimizer step or any in-place change (version), ``.to()``/``.double()``/``swap_tensors`` (storage) and
``load_state_dict`` in place or with ``assign=True``, or a parameter replaced in a module's dicts as
``pyro.module(..., update_module_params=True)`` does (identity), all make it stale. :func:`module_key` is
the key over every parameter and buffer of a module tree; the list of the tree's parameter/buffer dicts is
kept per module and rebuilt when a module is registered anywhere (torch's global registration hook), so a
key costs one pass over the tensors, not a walk of the tree.
"""

from __future__ import annotations

import itertools

import torch
from torch.nn.modules import module as _module

__all__ = ["key", "module_key", "module_tensors"]

_DICTS = "_pf_state_dicts"
_generation = itertools.count()
_current = [next(_generation)]


def _structure_changed(*args):
    _current[0] = next(_generation)


# A submodule added or replaced anywhere: rebuild the lists of dicts on next use. (Parameters and buffers
# replaced inside existing dicts are seen by the keys themselves.)
_module.register_module_module_registration_hook(_structure_changed)


def key(tensors) -> tuple:
    """The validity key of state derived from ``tensors`` (see the module docstring)."""
    return tuple((id(t), t.data_ptr(), t._version) for t in tensors)


def _dicts(module: torch.nn.Module) -> list:
    cached = module.__dict__.get(_DICTS)
    if cached is None or cached[0] != _current[0]:
        dicts = [d for m in module.modules() for d in (m._parameters, m._buffers)]
        cached = module.__dict__[_DICTS] = (_current[0], dicts)
    return cached[1]


def module_tensors(module: torch.nn.Module) -> list:
    """Every parameter and buffer of ``module``'s tree (shared ones once per place they are registered)."""
    return [t for d in _dicts(module) for t in d.values() if t is not None]


def module_key(module: torch.nn.Module) -> tuple:
    """:func:`key` over every parameter and buffer of ``module``'s tree."""
    return key(module_tensors(module))


def drop(state: dict) -> dict:
    """Removes the per-module bookkeeping from a ``__getstate__`` dict (pickles and copies rebuild it)."""
    state.pop(_DICTS, None)
    return state
