"""Parallel WaveNet's power loss: :func:`power_loss`, an optional term of a distillation loss (see
:mod:`pyro_flows.models.distill`)."""

from __future__ import annotations

import torch

from ..validation import positive_int

__all__ = ["power_loss"]

Tensor = torch.Tensor


def _power_spectra(x: Tensor, n_fft: int, hop: int) -> Tensor:
    """``|STFT|^2`` averaged over frames, per signal: ``(signals, n_fft // 2 + 1)``."""
    if x.dim() < 1 or x.shape[-1] < n_fft:
        raise ValueError(f"power_loss needs signals (..., T) with T >= n_fft = {n_fft}, got shape {tuple(x.shape)}")
    signals = x.reshape(-1, x.shape[-1])
    window = torch.hann_window(n_fft, dtype=x.dtype, device=x.device)
    spec = torch.stft(signals, n_fft, hop_length=hop, window=window, center=False, return_complex=True)
    return spec.abs().pow(2).mean(-1)


def power_loss(
    x_student: Tensor, x_real: Tensor, n_fft: int = 256, hop: int | None = None, *, paired: bool = False
) -> Tensor:
    """Parallel WaveNet's power loss: the squared distance between the power spectra of student samples and of
    real audio (an optional extra term, off unless added to the loss).

    Each signal (the last dim; leading dims, channels included, are flattened into signals) gets its power
    spectrum ``phi(x)[f] = mean over frames |STFT(x)[f, frame]|^2``: a Hann window of ``n_fft``, hop ``hop``
    (``n_fft // 4`` by default), no padding (``center=False``). Unpaired (default), the batch means are compared:
    ``mean_f (E_batch phi(x_student)[f] - E_batch phi(x_real)[f])^2`` (for an unconditional student, whose
    samples match no particular recording). ``paired=True`` (each student sample generated with the
    conditioning of the real signal at the same index, as in the paper): ``E_batch mean_f (phi(x_student_i)[f]
    - phi(x_real_i)[f])^2``.

    Args:
        x_student: the student's samples, ``(..., T)`` (e.g. ``DistillationLoss.sample`` of shape
            ``(n, 1, T)``).
        x_real: real signals ``(..., T')``, the same shape as ``x_student`` when ``paired``.
        n_fft: the STFT's window length (``T >= n_fft``).
        hop: the STFT's hop length.
        paired: compare signal by signal instead of batch means.

    Returns:
        The scalar loss.

    Example:
        >>> import torch
        >>> x = torch.randn(4, 1, 512)
        >>> power_loss(x, x).item()
        0.0
        >>> power_loss(x, 2 * x, n_fft=64).item() > 0
        True

    References:
        van den Oord et al., Parallel WaveNet, arXiv:1711.10433, section 4.1.
    """
    n_fft = positive_int("n_fft", n_fft)
    hop = max(1, n_fft // 4) if hop is None else positive_int("hop", hop)
    if paired and x_student.shape != x_real.shape:
        raise ValueError(
            f"paired=True compares signal by signal: shapes must match, got {tuple(x_student.shape)} and "
            f"{tuple(x_real.shape)}"
        )
    ps, pr = _power_spectra(x_student, n_fft, hop), _power_spectra(x_real.to(x_student.dtype), n_fft, hop)
    if paired:
        return (ps - pr).pow(2).mean()
    return (ps.mean(0) - pr.mean(0)).pow(2).mean()
