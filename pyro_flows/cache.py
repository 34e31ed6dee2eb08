"""The cache every flow keeps: one ``(x, y, log-det)`` entry per live output, looked up by tensor identity.

:class:`Entries` holds the entries; :class:`CachedCalls` gives a transform torch's interface (``__call__``,
``log_abs_det_jacobian``, ``clear_cache``, ``with_cache``) over its one-pass methods ``forward_and_log_det`` and
``inverse_and_log_det``.

The validity rule (written here, once, for entries):

* an entry dies with the tensor it computed (held weakly); it keeps its input alive, nothing else (until the
  next sweep of dead entries, see :class:`Entries`);
* an entry is found only for the same tensor object (so ``t.inv(y.clone())`` always recomputes) AT THE
  SAME VERSION: an in-place edit of the input or the output (``y.detach().mul_(2)`` shares the version
  counter) makes it stale, so a log-density never describes a tensor as it was before the edit;
* an entry made while gradients were off does not stand in for a computation that wants them;
* an entry made before the flow's parameters or buffers, or the bound context, changed is stale
  (:func:`pyro_flows.state.key`).
"""

from __future__ import annotations

import copy
import weakref
from typing import TYPE_CHECKING, Any

import torch

__all__ = ["Entries", "CachedCalls"]

Tensor = torch.Tensor


class _Entry:
    """One evaluation: ``given`` (held) was mapped to ``computed`` (held weakly) with this forward log-det."""

    __slots__ = ("given", "computed", "given_is_x", "log_det", "grad", "key", "versions", "__weakref__")

    def __init__(self, given, computed, given_is_x, log_det, key):
        self.given, self.computed, self.given_is_x = given, weakref.ref(computed), given_is_x
        self.log_det, self.key, self.grad = log_det, key, torch.is_grad_enabled()
        self.versions = (given._version, computed._version)

    def side(self, x_side: bool):
        return self.given if self.given_is_x == x_side else self.computed()

    def fresh(self) -> bool:
        """Neither tensor was edited in place since the entry was made."""
        computed = self.computed()
        return computed is not None and (self.given._version, computed._version) == self.versions


def _get(table: dict, tensor: Tensor):
    item = table.get(id(tensor))
    return item[1] if item is not None and item[0]() is tensor else None


class Entries:
    """Entries keyed by tensor identity: ``computed -> entry`` (the entry lives as long as its output) and
    ``given -> weakref(entry)``.

    Dead keys are swept when a table has grown past twice its live size at the last sweep (plus a few), not
    by weakref callbacks: a callback runs wherever the last reference to a tensor dies, and a Ctrl-C arriving
    inside one is printed as "Exception ignored" and lost. A dead key never matches (the referent is checked),
    and at most a handful of dead entries wait for the next sweep."""

    _SLACK = 8

    def __init__(self) -> None:
        self._by_computed: dict = {}
        self._by_given: dict = {}
        self._limit = self._SLACK

    def add(self, given, computed, given_is_x, log_det, key) -> None:
        entry = _Entry(given, computed, given_is_x, log_det, key)
        self._by_computed[id(computed)] = (weakref.ref(computed), entry)
        self._by_given[id(given)] = (weakref.ref(given), weakref.ref(entry))
        if len(self._by_computed) + len(self._by_given) > self._limit:
            for table in (self._by_computed, self._by_given):
                for k in [k for k, (ref, _) in table.items() if ref() is None]:
                    del table[k]
            self._limit = 2 * (len(self._by_computed) + len(self._by_given)) + self._SLACK

    def find(self, tensor, x_side: bool, key) -> _Entry | None:
        """The valid entry in which ``tensor`` is the x (``x_side``) or y side (see the module docstring)."""
        entry = _get(self._by_computed, tensor)
        if entry is None or entry.side(x_side) is not tensor:
            ref = _get(self._by_given, tensor)
            entry = ref() if ref is not None else None
            if entry is None or entry.side(x_side) is not tensor:
                return None
        if not entry.fresh() or (torch.is_grad_enabled() and not entry.grad) or entry.key != key:
            return None
        return entry

    def __len__(self):
        return sum(1 for ref, _ in self._by_computed.values() if ref() is not None)


class CachedCalls:
    """torch's interface with the multi-entry cache, for a transform with one-pass ``forward_and_log_det(x) ->
    (y, ld)`` and ``inverse_and_log_det(y) -> (x, ld)``, a ``fast`` direction, a ``_cache_size`` (0 or 1) and a ``_cache_key()``: the
    validity key of what its values depend on (parameters, buffers, a bound context)."""

    _cache_size: int
    fast: Any
    if TYPE_CHECKING:  # provided by the class it is mixed into

        def forward_and_log_det(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

        def inverse_and_log_det(self, y: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]: ...

        def _cache_key(self) -> tuple: ...

    def _cache(self) -> Entries:
        entries = self.__dict__.get("_pf_entries")
        if entries is None:
            entries = self.__dict__["_pf_entries"] = Entries()
        return entries

    def _lookup(self, tensor: Tensor, x_side: bool) -> _Entry | None:
        return self._cache().find(tensor, x_side, self._cache_key()) if self._cache_size else None

    def _store(self, given: Tensor, computed: Tensor, given_is_x: bool, log_det: Tensor) -> None:
        # the key is taken after the pass: a pass may change buffers (BatchNorm's running statistics, ActNorm's
        # first-batch initialization), and its entry must hold for the state it leaves
        if self._cache_size:
            self._cache().add(given, computed, given_is_x, log_det, self._cache_key())

    def _run(self, value: Tensor, forward: bool) -> Tensor:
        """The output for ``value`` in one direction, from the cache or one pass (stored)."""
        entry = self._lookup(value, forward)
        if entry is not None:
            return entry.side(not forward)
        out, ld = self.forward_and_log_det(value) if forward else self.inverse_and_log_det(value)
        self._store(value, out, forward, ld)
        return out

    def __call__(self, x: Tensor) -> Tensor:
        return self._run(x, True)

    def log_abs_det_jacobian(self, x: Tensor, y: Tensor) -> Tensor:
        entry = self._lookup(y, False)
        if entry is not None and entry.side(True) is x:
            return entry.log_det
        if self.fast == "inverse":
            x2, ld = self.inverse_and_log_det(y)
            self._store(y, x2, False, ld)
        else:
            y2, ld = self.forward_and_log_det(x)
            self._store(x, y2, True, ld)
        return ld

    def clear_cache(self) -> None:
        """Drops every cached (x, y, log-det) entry."""
        self.__dict__.pop("_pf_entries", None)

    def _view(self, cache_size: int):
        """A shallow copy with another cache size and an empty cache, sharing the parameters."""
        if cache_size not in (0, 1):
            raise ValueError(f"cache_size must be 0 or 1, got {cache_size!r}")
        view = copy.copy(self)
        view._cache_size = cache_size
        for name in TRANSIENT:
            view.__dict__.pop(name, None)
        return view


#: The instance attributes that pickles and copies drop (the cache and the remembered ``Inverse``).
TRANSIENT = ("_pf_entries", "_inverse_module")
