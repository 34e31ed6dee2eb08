"""Fixed permutations of the last dimension."""

from __future__ import annotations

import torch

from ..flow import Flow
from ..validation import positive_int

__all__ = ["Permute", "Reverse"]


def _parity(perm) -> int:
    """+1 for an even permutation, -1 for an odd one (the sign of its Jacobian determinant)."""
    seen, transpositions = [False] * len(perm), 0
    for start in range(len(perm)):
        length, i = 0, start
        while not seen[i]:
            seen[i], i, length = True, perm[i], length + 1
        transpositions += max(length - 1, 0)
    return -1 if transpositions % 2 else 1


class Permute(Flow):
    """``y = x[..., permutation]``; volume preserving, exact both ways. Fast direction: both.

    Args:
        permutation: a permutation of ``range(D)`` (list or long tensor).

    Example:
        >>> import torch
        >>> Permute([2, 0, 1])(torch.tensor([10., 11., 12.])).tolist()
        [12.0, 10.0, 11.0]
    """

    fast = "both"

    def __init__(self, permutation):
        perm = torch.as_tensor(permutation)
        if (
            perm.dim() != 1
            or perm.dtype not in (torch.int32, torch.int64)
            or not torch.equal(perm.sort().values, torch.arange(len(perm)))
        ):
            raise ValueError(f"permutation must be a 1-D permutation of range(D), got {permutation!r}")
        super().__init__(event_shape=(len(perm),))
        self.register_buffer("permutation", perm.long())
        self.register_buffer("inverse_permutation", torch.argsort(perm.long()))
        self.sign = _parity(perm.tolist())

    def _forward_and_log_det(self, x, context=None):
        return x.index_select(-1, self.permutation), x.new_zeros(x.shape[:-1])

    def _inverse_and_log_det(self, y, context=None):
        return y.index_select(-1, self.inverse_permutation), y.new_zeros(y.shape[:-1])


class Reverse(Permute):
    """``y = x[..., ::-1]``. Fast direction: both.

    Example:
        >>> import torch
        >>> Reverse(3)(torch.tensor([1., 2., 3.])).tolist()
        [3.0, 2.0, 1.0]
    """

    def __init__(self, input_dim: int):
        super().__init__(torch.arange(positive_int("input_dim", input_dim) - 1, -1, -1))
