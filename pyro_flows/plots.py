"""Figures for trained flows, saved straight to PNG files.

The helpers draw on ``matplotlib.figure.Figure`` objects and save them with the Agg
renderer; they never touch ``matplotlib.pyplot``, so they change no global backend
or state, open no window, and nothing needs closing (a figure is freed with its
last reference). matplotlib is an optional dependency, ``pip install 'pyro_flows[plots]'``;
without it this module still imports and each helper raises an ``ImportError`` saying so.

Example:
    >>> import tempfile, pathlib, torch
    >>> from pyro_flows.train import History
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> path = plot_history(History([1, 2], [2.0, 1.5], [2.1, 1.7]), out / "curve.png")
    >>> path.exists()
    True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .loop import History, eval_mode
from .train import distinct_parameters, training_modules
from .validation import optional_positive_int

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_density_2d", "plot_digits", "plot_images", "plot_history"]

_DPI = 100


def _figure(**kwargs) -> Figure:
    """A new ``matplotlib.figure.Figure``; matplotlib is imported here, so ``import pyro_flows`` does not need it."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("pyro_flows.plots needs matplotlib: pip install 'pyro_flows[plots]'") from err
    return Figure(**kwargs)


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI, bbox_inches="tight")
    return path


def _bounds(data: torch.Tensor) -> tuple[tuple[float, float], tuple[float, float]]:
    """The data's 0.5%..99.5% quantile box, padded by 15% on each side."""
    x = data.detach().to("cpu", torch.float64)
    low = torch.quantile(x, 0.005, dim=0)
    high = torch.quantile(x, 0.995, dim=0)
    pad = 0.15 * (high - low).clamp_min(1e-3)
    lo, hi = (low - pad).tolist(), (high + pad).tolist()
    return (lo[0], hi[0]), (lo[1], hi[1])


def _check_2d(data: object, distribution) -> torch.Tensor:
    if tuple(distribution.event_shape) != (2,):
        raise ValueError(
            f"plot_density_2d needs a distribution over 2-D vectors, got event shape {tuple(distribution.event_shape)}"
        )
    if not isinstance(data, torch.Tensor) or data.dim() != 2 or data.shape[1] != 2 or not len(data):
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(f"data must be a non-empty tensor of shape (N, 2), got {shape}")
    return data


def _density_grid(distribution, xlim, ylim, grid_size: int, like: torch.Tensor) -> torch.Tensor:
    """``p(x)`` on a ``grid_size`` x ``grid_size`` grid (rows: y, columns: x), on the CPU."""
    xs = torch.linspace(xlim[0], xlim[1], grid_size, dtype=like.dtype, device=like.device)
    ys = torch.linspace(ylim[0], ylim[1], grid_size, dtype=like.dtype, device=like.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=-1)
    log_p = torch.cat([distribution.log_prob(chunk) for chunk in torch.split(points, 4096)])
    density = log_p.exp().reshape(grid_size, grid_size)
    return torch.nan_to_num(density, nan=0.0, posinf=0.0).cpu()


def plot_density_2d(
    distribution,
    data: torch.Tensor,
    path: str | Path,
    *,
    grid_size: int = 200,
    num_samples: int | None = None,
    bins: int = 80,
    title: str | None = None,
) -> Path:
    """Saves three panels: the data, the learned density ``p(x)`` on a grid, and samples.

    The data and the samples are drawn as 2-D histograms over the same box (the
    data's 0.5%..99.5% quantiles, padded), so they compare at a glance. The density
    and the samples are computed without gradients and with the flow's modules in
    eval mode (their modes are restored afterwards).

    Args:
        distribution: A ``TransformedDistribution`` over 2-D vectors.
        data: Tensor of shape ``(N, 2)``.
        path: Where to write the PNG; missing parent folders are created.
        grid_size: Grid points per axis of the density panel.
        num_samples: Samples to draw; ``None`` draws ``min(N, 20000)``.
        bins: Histogram bins per axis.
        title: Optional title over the figure.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ValueError: If the distribution is not over 2-D vectors or ``data`` is not
            a non-empty ``(N, 2)`` tensor.

    Example:
        >>> import tempfile, pathlib, torch, pyro.distributions as dist
        >>> base = dist.Normal(torch.zeros(2), torch.ones(2)).to_event(1)
        >>> d = dist.TransformedDistribution(base, [])
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "density.png"
        >>> plot_density_2d(d, torch.randn(500, 2), out, grid_size=20).exists()
        True
    """
    data = _check_2d(data, distribution)
    modules = training_modules(distribution)
    params = distinct_parameters(modules)
    like = params[0] if params else data
    count = min(len(data), 20_000) if num_samples is None else num_samples
    xlim, ylim = _bounds(data)
    with torch.no_grad(), eval_mode(modules):
        density = _density_grid(distribution, xlim, ylim, grid_size, like)
        samples = distribution.sample((count,)).cpu()
    aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    fig = _figure(figsize=(12, 3.6 * min(max(aspect, 0.3), 3.0) + 0.9), layout="constrained")
    axes = fig.subplots(1, 3)
    extent = (*xlim, *ylim)
    hist = dict(bins=bins, range=(xlim, ylim), cmap="viridis")
    axes[0].hist2d(*data.detach().cpu().double().T.numpy(), **hist)
    axes[0].set_title(f"data (n={len(data)})")
    axes[1].imshow(density.numpy(), origin="lower", extent=extent, aspect="auto", cmap="viridis")
    axes[1].set_title("learned density p(x)")
    axes[2].hist2d(*samples.double().T.numpy(), **hist)
    axes[2].set_title(f"samples (n={count})")
    for ax in axes:
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def _image_grid(images: torch.Tensor, ncols: int, *, gap: int = 1, fill: float = 0.3) -> torch.Tensor:
    """Tiles ``(N, H, W)`` images into one array, ``gap`` pixels of value ``fill`` apart."""
    n, h, w = images.shape
    nrows = math.ceil(n / ncols)
    shape = (nrows * (h + gap) + gap, ncols * (w + gap) + gap)
    canvas = torch.full(shape, fill, dtype=images.dtype)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = gap + r * (h + gap), gap + c * (w + gap)
        canvas[top : top + h, left : left + w] = image
    return canvas


def plot_digits(
    samples: torch.Tensor,
    path: str | Path,
    *,
    ncols: int | None = None,
    title: str | None = None,
) -> Path:
    """Saves 8x8 images (values in ``[0, 1]``, clipped) as one grid, dark ink on white.

    :func:`plot_images` for the digits: ``samples`` of shape ``(N, 64)``, ``(N, 8, 8)`` or ``(N, 1, 8, 8)``.

    Example:
        >>> import tempfile, pathlib, torch
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "digits.png"
        >>> plot_digits(torch.rand(10, 64), out).exists()
        True
    """
    return plot_images(samples, path, image_shape=(8, 8), ncols=ncols, title=title)


def plot_images(
    samples: torch.Tensor,
    path: str | Path,
    *,
    image_shape: tuple[int, int],
    ncols: int | None = None,
    title: str | None = None,
) -> Path:
    """Saves grey-scale images (values in ``[0, 1]``, clipped; NaN shown as 0) as one grid, dark ink on white.

    Args:
        samples: Tensor of shape ``(N, H*W)``, ``(N, H, W)`` or ``(N, 1, H, W)``.
        path: Where to write the PNG; missing parent folders are created.
        image_shape: ``(H, W)`` of one image.
        ncols: Images per row; ``None`` for a near-square grid.
        title: Optional title over the grid.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ValueError: If ``samples`` has another shape or is empty, or ``ncols`` is
            not a positive int.

    Example:
        >>> import tempfile, pathlib, torch
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "mnist.png"
        >>> plot_images(torch.rand(4, 1, 28, 28), out, image_shape=(28, 28)).exists()
        True
    """
    h, w = image_shape
    allowed = {(h * w,), (h, w), (1, h, w)}
    if not isinstance(samples, torch.Tensor) or not samples.numel() or tuple(samples.shape[1:]) not in allowed:
        shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
        raise ValueError(
            f"samples must be a non-empty tensor of shape (N, {h * w}), (N, {h}, {w}) or (N, 1, {h}, {w}), got {shape}"
        )
    images = samples.detach().cpu().double().reshape(-1, h, w)
    images = torch.nan_to_num(images, nan=0.0).clamp(0, 1)
    if ncols is None:
        ncols = math.ceil(math.sqrt(len(images)))
    optional_positive_int("ncols", ncols)
    grid = _image_grid(images, ncols)
    size = 0.6 * ncols * max(1.0, w / 16)
    fig = _figure(figsize=(size, size * grid.shape[0] / grid.shape[1] + (0.4 if title else 0)))
    ax = fig.subplots()
    ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return _save(fig, path)


def _history_lists(history) -> tuple[Sequence[int], Sequence[float], Sequence[float | None]]:
    if isinstance(history, History):
        return history.step, history.train_nll, history.valid_nll
    if isinstance(history, Mapping) and {"step", "train_nll"} <= set(history):
        return history["step"], history["train_nll"], history.get("valid_nll", [])
    raise ValueError(
        "history must be a pyro_flows.train.History or a mapping with keys "
        f"'step', 'train_nll' and optionally 'valid_nll', got {type(history).__name__}"
    )


def _clip_blowups(ax, train: list[float], valid: list[float]) -> None:
    """Keeps an overfitting validation curve from flattening the rest: the y axis stops
    at the highest training value or first validation value, whichever is higher."""
    values = [v for v in train + valid if math.isfinite(v)]
    if not values:
        return
    top = max([v for v in train if math.isfinite(v)] + valid[:1] or values)
    bottom = min(values)
    pad = 0.05 * (top - bottom) or 0.5
    ax.set_ylim(bottom - pad, top + pad)


def plot_history(history, path: str | Path, *, title: str | None = None) -> Path:
    """Saves the learning curve: train and validation NLL (nats) against the step.

    The y axis spans the training curve and the first validation value, so a
    validation NLL that blows up when overfitting runs off the top instead of
    squashing the curves.

    Args:
        history: A :class:`~pyro_flows.train.History` (``FitResult.history``) or a
            mapping with the same keys (e.g. from ``History.as_dict()``).
        path: Where to write the PNG; missing parent folders are created.
        title: Optional title.

    Returns:
        The path written, as a ``pathlib.Path``.

    Raises:
        ValueError: If ``history`` has neither form.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "history.png"
        >>> plot_history({"step": [10, 20], "train_nll": [3.0, 2.5]}, out).exists()
        True
    """
    steps, train, valid = _history_lists(history)
    fig = _figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(steps, train, label="train (minibatch mean)")
    points = [(s, v) for s, v in zip(steps, valid) if v is not None]
    if points:
        vs, vv = zip(*points)
        ax.plot(vs, vv, label="valid")
        best = min(range(len(vv)), key=vv.__getitem__)
        ax.scatter(
            [vs[best]],
            [vv[best]],
            marker="*",
            s=120,
            color="C3",
            zorder=3,
            label=f"best valid {vv[best]:.4g} (step {vs[best]})",
        )
    _clip_blowups(ax, list(train), [v for _, v in points])
    ax.set_xlabel("step")
    ax.set_ylabel("NLL (nats)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return _save(fig, path)
