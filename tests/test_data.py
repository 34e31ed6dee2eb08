"""Tests of pyro_flows.data: toy 2-D densities, digits, load()."""

import math

import numpy as np
import pytest
import torch

from pyro_flows import data


@pytest.mark.parametrize("name", data.TOY2D)
def test_toy2d_shape_dtype_and_determinism(name):
    x = data.toy2d(name, 301, seed=5)
    assert x.shape == (301, 2)
    assert x.dtype == torch.float32
    assert torch.isfinite(x).all()
    assert torch.equal(x, data.toy2d(name, 301, seed=5))
    assert not torch.equal(x, data.toy2d(name, 301, seed=6))


@pytest.mark.parametrize("name", data.TOY2D)
def test_toy2d_is_standardized(name):
    x = data.toy2d(name, 40_000, seed=0).double()
    assert x.mean(0).abs().max() < 0.05
    # the scale is the root mean per-coordinate standard deviation
    assert abs(x.var(0).mean().sqrt().item() - 1.0) < 0.03


@pytest.mark.parametrize("name", data.TOY2D)
def test_toy2d_noise_changes_the_data(name):
    quiet = data.toy2d(name, 2000, seed=0, noise=0.0)
    loud = data.toy2d(name, 2000, seed=0, noise=0.5)
    assert not torch.equal(quiet, loud)


def test_toy2d_shapes_are_the_expected_ones():
    circles = data.toy2d("circles", 4000, seed=0, noise=0.0) * 0.565  # undo the scale
    radii = circles.norm(dim=1)
    assert torch.allclose(radii[radii > 0.75], torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(radii[radii < 0.75], torch.tensor(0.5), atol=1e-5)
    eight = data.toy2d("eight_gaussians", 4000, seed=0, noise=0.0) * 0.718
    angles = torch.atan2(eight[:, 1], eight[:, 0]).double() / (math.pi / 4)
    assert torch.allclose(angles, angles.round(), atol=1e-5)
    board = data.toy2d("checkerboard", 4000, seed=0) * 1.155
    cells = board.floor().long()
    assert ((cells[:, 0] + cells[:, 1]) % 2 == 0).all()  # only the "black" squares


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"name": "moon", "n": 10}, "valid names are: moons, circles"),
        ({"name": "moons", "n": 0}, "n must be an int >= 1"),
        ({"name": "moons", "n": 2.5}, "n must be an int >= 1"),
        ({"name": "moons", "n": True}, "n must be an int >= 1"),
        ({"name": "moons", "n": 10, "seed": -1}, "seed must be an int >= 0"),
        ({"name": "moons", "n": 10, "seed": 1.0}, "seed must be an int >= 0"),
        ({"name": "moons", "n": 10, "noise": -0.1}, "noise must be a finite number >= 0"),
        ({"name": "moons", "n": 10, "noise": float("nan")}, "noise must be a finite number"),
    ],
)
def test_toy2d_rejects_bad_arguments(kwargs, message):
    name = kwargs.pop("name")
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=message):
        data.toy2d(name, n, **kwargs)


def test_digits_split_sizes_range_and_determinism():
    split = data.digits(seed=0)
    assert isinstance(split, data.Split)
    assert [tuple(t.shape) for t in split] == [(1257, 64), (270, 64), (270, 64)]
    assert all(t.dtype == torch.float32 for t in split)
    everything = torch.cat(list(split))
    assert everything.min() >= 0 and everything.max() < 1
    again = data.digits(seed=0)
    assert all(torch.equal(a, b) for a, b in zip(split, again))
    other = data.digits(seed=1)
    assert not torch.equal(split.train, other.train)


def test_digits_dequantization_recovers_the_pixels():
    from sklearn.datasets import load_digits

    split = data.digits(seed=3)
    pixels = torch.cat(list(split)).double().mul(data.DIGITS_LEVELS).floor()
    assert pixels.min() >= 0 and pixels.max() <= 16
    # the splits together are a permutation of all images: none is lost or repeated
    original = np.asarray(load_digits().data)
    ours = pixels.numpy()
    assert sorted(map(bytes, ours.astype(np.uint8))) == sorted(map(bytes, original.astype(np.uint8)))
    # and the noise u = 17 x - k is not constant
    fraction = torch.cat(list(split)).double().mul(data.DIGITS_LEVELS) - pixels
    assert 0.45 < fraction.mean() < 0.55


def test_digits_bits_per_dim_convention():
    # a uniform density on [0, 1)^64 has NLL 0; in pixel space it is uniform on [0, 17)^64
    assert data.digits_bits_per_dim(0.0) == pytest.approx(math.log2(17))
    assert data.DIGITS_NLL_OFFSET == pytest.approx(64 * math.log(17))
    nll = -50.0
    assert data.digits_bits_per_dim(nll) == pytest.approx((nll + 64 * math.log(17)) / (64 * math.log(2)))
    with pytest.raises(ValueError, match="nll must be a real number"):
        data.digits_bits_per_dim("1.0")


def test_digits_rejects_bad_seed():
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        data.digits(seed=-3)


def test_load_toy_sizes_and_independent_splits():
    split = data.load("pinwheel", n_train=300, n_valid=40, n_test=50, seed=2)
    assert [len(t) for t in split] == [300, 40, 50]
    assert not torch.equal(split.train[:40], split.valid)
    assert not torch.equal(split.valid, split.test[:40])
    again = data.load("pinwheel", n_train=300, n_valid=40, n_test=50, seed=2)
    assert all(torch.equal(a, b) for a, b in zip(split, again))


def test_load_defaults():
    split = data.load("spirals")
    assert [len(t) for t in split] == [10_000, 2_000, 2_000]


def test_load_digits_matches_digits():
    split = data.load("digits", seed=4)
    assert all(torch.equal(a, b) for a, b in zip(split, data.digits(seed=4)))


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        (("mnist",), {}, "unknown data set 'mnist'; valid names are: moons, .*, digits"),
        ((3,), {}, "unknown data set 3"),
        (("digits",), {"n_train": 100}, "n_train cannot be set for 'digits'"),
        (("moons",), {"n_valid": 0}, "n_valid must be an int >= 1"),
        (("moons",), {"n_test": "5"}, "n_test must be an int >= 1"),
        (("moons",), {"seed": -1}, "seed must be an int >= 0"),
    ],
)
def test_load_rejects_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        data.load(*args, **kwargs)


# --- MNIST, dequantization, bits/dim ----------------------------------------------------------------------
def test_bits_per_dim_is_the_pixel_space_convention():
    assert data.bits_per_dim(0.0, 784) == pytest.approx(8.0)  # uniform on [0, 1)^784
    nll = -1500.0
    assert data.bits_per_dim(nll, 784) == pytest.approx((nll + 784 * math.log(256)) / (784 * math.log(2)))
    assert data.digits_bits_per_dim(nll) == pytest.approx(data.bits_per_dim(nll, 64, levels=17))
    with pytest.raises(ValueError, match="dims"):
        data.bits_per_dim(1.0, 0)


def test_dequantize_stays_in_its_cell_and_draws_fresh_noise():
    k = torch.arange(256, dtype=torch.uint8).repeat(4)
    x = data.dequantize(k)
    assert x.dtype == torch.float32
    assert ((x * 256).floor().long() == k.long()).all()
    assert not torch.equal(x, data.dequantize(k))
    with pytest.raises(ValueError, match=r"0\.\.16"):
        data.dequantize(torch.tensor([17]), levels=17)


def test_mnist_loads_the_offline_copy():
    try:
        split = data.mnist()
    except FileNotFoundError as err:
        pytest.skip(f"MNIST is not available here: {err}")
    assert [tuple(t.shape) for t in split] == [(50000, 1, 28, 28), (10000, 1, 28, 28), (10000, 1, 28, 28)]
    assert split.train.dtype == torch.uint8 and int(split.train.max()) == 255


def test_mnist_missing_file_names_the_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_FLOWS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="PYRO_FLOWS_DATA"):
        data.mnist()
