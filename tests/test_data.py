"""Tests of pyro_flows.data: toy 2-D densities, digits, load(), MNIST, pixels, spoken digits, the .npz reader."""

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


# --------------------------------------------------------------------------- spoken digits


def _spoken(split="train", **kw):
    try:
        return data.spoken_digits(split, **kw)
    except FileNotFoundError as err:
        pytest.skip(f"spoken_digits.npz is not available here: {err}")


@pytest.mark.parametrize("split,n", [("train", 1440), ("valid", 240), ("test", 240)])
def test_spoken_digits_whole_clips(split, n):
    s = _spoken(split)
    assert isinstance(s, data.Speech)
    assert s.x.shape == (n, 8192) and s.x.dtype == torch.float32
    assert float(s.x.min()) >= -1.0 and float(s.x.max()) < 1.0
    assert ((s.x * 32768) == (s.x * 32768).round()).all()  # exact k / 32768
    for t in (s.digit, s.speaker, s.length, s.start):
        assert t.shape == (n,) and t.dtype == torch.int64
    assert set(s.digit.tolist()) == set(range(10))
    assert s.sample_rate == 8000
    assert int(s.length.min()) >= 1920 and int(s.length.max()) <= 8192 and not s.start.any()
    # the padding after each clip's true length is exact zeros
    pad = torch.arange(8192) >= s.length[:, None]
    assert not s.x[pad].any()
    # speakers: 32 sorted names, ids shared across splits, 24/4/4 voices per split
    assert len(s.speakers) == 32 and list(s.speakers) == sorted(s.speakers)
    assert len(set(s.speaker.tolist())) == {"train": 24, "valid": 4, "test": 4}[split]
    assert s.speaker_names[0] == s.speakers[int(s.speaker[0])] and len(s.speaker_names) == n


def test_spoken_digits_splits_have_no_voice_in_common():
    voices = [set(_spoken(split).speaker.tolist()) for split in data.SPEECH_SPLITS]
    assert not (voices[0] & voices[1]) and not (voices[0] & voices[2]) and not (voices[1] & voices[2])


@pytest.mark.parametrize("split", data.SPEECH_SPLITS)
def test_spoken_digits_windows_lie_inside_the_true_length(split):
    clips = _spoken(split)
    w = _spoken(split, window=1920)
    assert w.x.shape == (len(clips.x), 1920) and w.x.dtype == torch.float32
    assert (w.start >= 0).all() and (w.start + 1920 <= w.length).all()  # every source index < length
    index = w.start[:, None] + torch.arange(1920)
    assert torch.equal(w.x, clips.x.gather(1, index))
    assert torch.equal(w.length, clips.length) and torch.equal(w.digit, clips.digit)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_spoken_digits_valid_and_test_windows_are_centered(split):
    w = _spoken(split, window=1000)
    assert torch.equal(w.start, (w.length - 1000) // 2)
    assert torch.equal(w.x, _spoken(split, window=1000, seed=7).x)  # the seed does not move them


def test_spoken_digits_train_windows_are_random_and_seeded():
    a, b, c = (_spoken("train", window=512, seed=s) for s in (0, 0, 1))
    assert torch.equal(a.x, b.x) and torch.equal(a.start, b.start)
    assert not torch.equal(a.start, c.start)
    assert len(set(a.start.tolist())) > 100  # spread over the clips, not one offset
    assert (a.start + 512 <= a.length).all()


def test_spoken_digits_dequantization_adds_less_than_one_step():
    plain = _spoken("valid", window=256)
    noisy = _spoken("valid", window=256, add_noise=True)
    step = (noisy.x - plain.x) * 32768
    assert float(step.min()) >= 0 and float(step.max()) < 1 + 1e-3  # float32 rounding near |x| = 1
    assert float(step.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(noisy.x.max()) < 1.0 and float(noisy.x.min()) >= -1.0
    assert torch.equal(noisy.x, _spoken("valid", window=256, add_noise=True).x)  # seeded
    assert not torch.equal(noisy.x, _spoken("valid", window=256, add_noise=True, seed=1).x)
    whole = _spoken("test", add_noise=True)
    assert whole.x.shape == (240, 8192) and float(whole.x.max()) < 1.0


def test_speech_windows_makes_fresh_crops_from_whole_clips():
    clips = _spoken("valid")
    g = torch.Generator().manual_seed(3)
    a = data.speech_windows(clips, 700, generator=g, add_noise=True)
    b = data.speech_windows(clips, 700, generator=g)
    assert a.x.shape == b.x.shape == (240, 700)
    assert not torch.equal(a.start, b.start)
    assert (a.start + 700 <= a.length).all() and (b.start + 700 <= b.length).all()
    with pytest.raises(ValueError, match="whole clips"):
        data.speech_windows(a, 100)
    with pytest.raises(TypeError, match="Speech"):
        data.speech_windows(clips.x, 100)


def test_speech_windows_on_synthetic_clips():
    x = torch.arange(20.0).reshape(2, 10) / 32768
    clips = data.Speech(
        x, torch.tensor([1, 2]), torch.tensor([0, 1]), ("a", "b"), torch.tensor([6, 9]), torch.zeros(2).long(), 8000
    )
    for seed in range(20):
        w = data.speech_windows(clips, 6, generator=torch.Generator().manual_seed(seed))
        assert w.start[0] == 0 and 0 <= int(w.start[1]) <= 3
        assert torch.equal(w.x * 32768, (w.start[:, None] + torch.arange(6) + torch.tensor([[0], [10]])).float())
    with pytest.raises(ValueError, match="1 of 2 clips are shorter than window=7.*drop_short=True"):
        data.speech_windows(clips, 7)
    kept = data.speech_windows(clips, 7, drop_short=True, center=True)
    assert kept.digit.tolist() == [2] and kept.length.tolist() == [9] and kept.x.shape == (1, 7)
    with pytest.raises(ValueError, match="at most 9 samples"):
        data.speech_windows(clips, 10, drop_short=True)


def test_spoken_digits_drops_short_clips_only_when_asked():
    w = _spoken("train", window=2048, drop_short=True)
    assert w.x.shape == (1437, 2048) and bool((w.length >= 2048).all())
    assert _spoken("test", window=2048).x.shape == (240, 2048)  # every test clip is long enough


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        ({"split": "training"}, ValueError, "unknown split 'training'; valid splits are: train, valid, test"),
        ({"split": 0}, ValueError, "valid splits are"),
        ({"window": 0}, ValueError, "window must be a positive int of at most 8192"),
        ({"window": 1921}, ValueError, "1 of 1440 clips are shorter than window=1921 .*drop_short=True"),
        ({"window": 256.0}, TypeError, "window must be a positive int"),
        ({"window": True}, TypeError, "window must be a positive int"),
        ({"seed": -1}, ValueError, "seed must be an int >= 0"),
    ],
)
def test_spoken_digits_bad_arguments(kwargs, error, match):
    split = kwargs.pop("split", "train")
    with pytest.raises(error, match=match):
        _spoken(split, **kwargs)


def test_spoken_digits_missing_file_names_the_path_and_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("PYRO_FLOWS_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="spoken_digits.npz.*PYRO_FLOWS_DATA"):
        data.spoken_digits()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "none.npz")):
        data.spoken_digits("test", path=tmp_path / "none.npz")


def test_spoken_digits_is_in_the_package_namespace():
    import pyro_flows as pf

    assert pf.data.spoken_digits is data.spoken_digits and "spoken_digits" in data.__all__


def _tiny_speech_file(folder):
    """A spoken_digits.npz of two 16-bit clips per split (lengths 6 and 8, padded to 8 samples)."""
    arrays = {"sample_rate": np.array(8000)}
    for i, split in enumerate(data.SPEECH_SPLITS):
        padding = np.array([[1] * 6 + [0] * 2, [1] * 8])
        arrays[f"{split}_x"] = (np.arange(16).reshape(2, 8) * 100 * padding).astype(np.int16)
        arrays[f"{split}_digit"] = np.array([1, 2])
        arrays[f"{split}_speaker"] = np.array([f"s{2 * i}", f"s{2 * i + 1}"])
        arrays[f"{split}_length"] = np.array([6, 8])
    np.savez(folder / "spoken_digits.npz", **arrays)
    return folder / "spoken_digits.npz"


def test_spoken_digits_add_noise_and_its_deprecated_name(tmp_path):
    path = _tiny_speech_file(tmp_path)
    plain = data.spoken_digits("valid", path=path)
    noisy = data.spoken_digits("valid", path=path, add_noise=True)
    assert plain.x.shape == (2, 8) and plain.speakers == ("s0", "s1", "s2", "s3", "s4", "s5")
    step = (noisy.x - plain.x) * 32768
    assert float(step.min()) >= 0 and float(step.max()) < 1
    with pytest.warns(DeprecationWarning, match="spoken_digits: dequantize= is deprecated.*use add_noise=") as record:
        old = data.spoken_digits("valid", path=path, dequantize=True)
    assert record[0].filename == __file__  # the warning points at the caller
    assert torch.equal(old.x, noisy.x)
    with pytest.warns(DeprecationWarning, match="use add_noise="):
        window = data.spoken_digits("valid", path=path, window=4, dequantize=False)
    assert window.start.tolist() == [1, 2]  # centered: (length - 4) // 2
    assert torch.equal(window.x, torch.stack([plain.x[0, 1:5], plain.x[1, 2:6]]))
    with pytest.raises(TypeError, match="both add_noise= and its deprecated name dequantize="):
        data.spoken_digits("valid", path=path, add_noise=True, dequantize=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'windw'"):
        data.spoken_digits("valid", path=path, windw=4)


def test_speech_windows_add_noise_and_its_deprecated_name():
    x = torch.arange(20.0).reshape(2, 10) / 32768
    clips = data.Speech(
        x, torch.tensor([1, 2]), torch.tensor([0, 1]), ("a", "b"), torch.tensor([6, 9]), torch.zeros(2).long(), 8000
    )
    new = data.speech_windows(clips, 4, center=True, add_noise=True, generator=torch.Generator().manual_seed(0))
    with pytest.warns(DeprecationWarning, match="speech_windows: dequantize= is deprecated.*use add_noise=") as record:
        old = data.speech_windows(clips, 4, center=True, dequantize=True, generator=torch.Generator().manual_seed(0))
    assert record[0].filename == __file__
    assert torch.equal(new.x, old.x) and not torch.equal(new.x, data.speech_windows(clips, 4, center=True).x)
    with pytest.raises(TypeError, match="both add_noise= and its deprecated name dequantize="):
        data.speech_windows(clips, 4, add_noise=False, dequantize=True)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"add_noise": "yes"}, "add_noise must be True or False, got 'yes'"),
        ({"add_noise": 1}, "add_noise must be True or False, got 1"),
        ({"drop_short": "no"}, "drop_short must be True or False, got 'no'"),
    ],
)
def test_spoken_digits_flags_are_bools_only(kwargs, match):
    # checked before the file is read, so no data are needed
    with pytest.raises(TypeError, match=match):
        data.spoken_digits("valid", path="/nonexistent/spoken_digits.npz", **kwargs)


def test_spoken_digits_deprecated_flag_is_bools_only_too():
    with pytest.warns(DeprecationWarning), pytest.raises(TypeError, match="add_noise must be True or False"):
        data.spoken_digits("valid", path="/nonexistent/spoken_digits.npz", dequantize="yes")


@pytest.mark.parametrize("flag", ["center", "add_noise", "drop_short"])
def test_speech_windows_flags_are_bools_only(flag):
    clips = data.Speech(
        torch.zeros(1, 4), torch.tensor([1]), torch.tensor([0]), ("a",), torch.tensor([4]), torch.zeros(1).long(), 8000
    )
    with pytest.raises(TypeError, match=f"speech_windows: {flag} must be True or False, got 'no'"):
        data.speech_windows(clips, 2, **{flag: "no"})


# --------------------------------------------------------------------------- the .npz files: one reader, clear errors

_LOADERS = {
    "mnist": (data.mnist, "mnist.npz", "x_train, x_valid, x_test"),
    "binarized_mnist": (data.binarized_mnist, "binarized_mnist.npz", "train, valid, test"),
    "spoken_digits": (lambda path: data.spoken_digits("valid", path=path), "spoken_digits.npz", "train_speaker"),
}


@pytest.mark.parametrize("loader", sorted(_LOADERS))
def test_loaders_refuse_a_path_that_is_not_a_path(loader):
    load, _, _ = _LOADERS[loader]
    with pytest.raises(TypeError, match=r"path must be a path \(str or os.PathLike\).*got int"):
        load(3)


@pytest.mark.parametrize("loader", sorted(_LOADERS))
@pytest.mark.parametrize(
    "content",
    [b"", b"not an archive", b"PK\x03\x04truncated zip", "npy"],
    ids=["empty", "text", "truncated", "npy"],
)
def test_loaders_name_the_file_when_it_is_empty_or_corrupt(tmp_path, loader, content):
    load, name, _ = _LOADERS[loader]
    path = tmp_path / name
    if content == "npy":
        with open(path, "wb") as f:  # a bare .npy array under the .npz name
            np.save(f, np.arange(3))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=f"cannot read .* from {path}: it is not a .npz archive"):
        load(path)
    with pytest.raises(ValueError, match=str(path)):
        load(tmp_path)  # the folder holding it


@pytest.mark.parametrize("loader", sorted(_LOADERS))
def test_loaders_name_the_file_when_an_array_is_damaged(tmp_path, loader):
    load, name, _ = _LOADERS[loader]
    good = tmp_path / "good.npz"
    keys = {"mnist": ["x_train", "x_valid", "x_test"], "binarized_mnist": ["train", "valid", "test"]}.get(loader)
    if keys is None:
        good = _tiny_speech_file(tmp_path)
    else:
        np.savez(good, **{k: np.full((1, 784), 7, dtype=np.uint8) for k in keys})
    raw = bytearray(good.read_bytes())
    raw[raw.index(b"\x07\x07\x07") if keys else len(raw) // 3] ^= 0xFF  # one byte of the data: a bad CRC
    bad = tmp_path / name
    bad.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=f"cannot read .* from {bad}"):
        load(bad)


@pytest.mark.parametrize("loader", sorted(_LOADERS))
def test_loaders_name_the_missing_keys_and_the_file(tmp_path, loader):
    load, name, missing = _LOADERS[loader]
    wrong = tmp_path / "other.npz"
    np.savez(wrong, something=np.zeros(3))
    with pytest.raises(ValueError, match=f"{wrong} lacks the keys {missing}.*it has: something"):
        load(wrong)
    empty = tmp_path / name
    np.savez(empty)  # a valid archive with no arrays
    with pytest.raises(ValueError, match=f"{empty} lacks the keys {missing}.*no arrays"):
        load(tmp_path)


def test_spoken_digits_from_an_mnist_file_names_the_missing_keys(tmp_path):
    mnist = tmp_path / "mnist.npz"
    np.savez(mnist, **{k: np.zeros((1, 28, 28), np.uint8) for k in ("x_train", "x_valid", "x_test")})
    with pytest.raises(ValueError, match=f"{mnist} lacks the keys train_speaker, valid_speaker, .*sample_rate"):
        data.spoken_digits("valid", path=mnist)


def test_loaders_read_a_file_of_any_name_it_is_given(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not data")
    with pytest.raises(ValueError, match=f"from {text}: it is not a .npz archive"):
        data.mnist(text)  # an existing file is read as given, whatever its suffix
    arrays = {k: np.full((n, 28, 28), 9, np.uint8) for k, n in (("x_train", 3), ("x_valid", 2), ("x_test", 1))}
    np.savez(tmp_path / "mine.npz", **arrays)
    split = data.mnist(tmp_path / "mine.npz")
    assert [tuple(t.shape) for t in split] == [(3, 1, 28, 28), (2, 1, 28, 28), (1, 1, 28, 28)]
    assert split.train.dtype == torch.uint8 and int(split.test.max()) == 9
    packed = {k: np.packbits(np.ones((n, 784), np.uint8), axis=1) for k, n in (("train", 2), ("valid", 1), ("test", 1))}
    np.savez(tmp_path / "binarized_mnist.npz", **packed)
    binary = data.binarized_mnist(tmp_path)
    assert binary.train.shape == (2, 1, 28, 28) and binary.train.dtype == torch.float32 and bool(binary.valid.all())


# --------------------------------------------------------------------------- MuLaw


def test_mulaw_round_trip_and_known_values():
    import pyro_flows as pf

    t = pf.MuLaw(4, mu=255)
    edges = torch.tensor([-1.0, 0.0, 1.0, 0.5])
    y = t(edges)
    assert y[:3].tolist() == [-1.0, 0.0, 1.0]
    assert float(y[3]) == pytest.approx(math.log1p(127.5) / math.log1p(255))
    x = torch.rand(100, 4) * 2 - 1
    y = t(x)
    assert float(y.abs().max()) <= 1.0 and torch.equal(torch.sign(y), torch.sign(x))
    torch.testing.assert_close(t.inv(y.clone()), x, atol=1e-6, rtol=1e-5)
    x2, ld2 = t.inverse_and_log_det(y)
    torch.testing.assert_close(ld2, t.forward_and_log_det(x)[1], atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("mu", [255.0, 15, 1e-3])
def test_mulaw_log_det_matches_autograd_float64(mu):
    import pyro_flows as pf

    t = pf.MuLaw((2, 3), mu=mu)
    x = (torch.rand(2, 3, dtype=torch.float64) * 1.8 - 0.9).requires_grad_()
    y, ld = t.forward_and_log_det(x)
    (grad,) = torch.autograd.grad(y.sum(), x)  # elementwise: the Jacobian is diagonal
    torch.testing.assert_close(ld, grad.log().sum(), atol=1e-10, rtol=1e-10)
    expected = (math.log(mu) - math.log(math.log1p(mu)) - torch.log1p(mu * x.abs())).sum()
    torch.testing.assert_close(ld, expected, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize(
    "mu,error", [(0, ValueError), (-255.0, ValueError), (float("inf"), ValueError), ("255", TypeError)]
)
def test_mulaw_bad_mu_is_a_clear_error(mu, error):
    import pyro_flows as pf

    with pytest.raises(error, match="mu must be a positive finite number"):
        pf.MuLaw(3, mu=mu)


def test_an_evaluation_subset_of_the_sorted_test_split_is_class_balanced():
    # the static binarized test split is sorted by class: label each row by the known class counts
    counts = data.MNIST_TEST_CLASS_COUNTS
    labels = torch.repeat_interleave(torch.arange(10), torch.tensor(counts))
    for n in (100, 500, 1000):
        subset, how = data.evaluation_subset(labels[:, None].float(), n)
        assert len(subset) == n and "every" in how
        share = torch.bincount(subset.flatten().long(), minlength=10).float() / n
        expected = torch.tensor(counts).float() / sum(counts)
        assert (share - expected).abs().max() < 0.01, (n, share)
    prefix = labels[:1000]
    assert set(prefix.tolist()) == {0, 1}, "a prefix holds zeros and ones only: why the subset is strided"
    whole, how = data.evaluation_subset(labels[:, None], None)
    assert len(whole) == 10000 and how == "all 10000 rows"
    with pytest.raises(ValueError, match="n must be an int"):
        data.evaluation_subset(labels[:, None], 0)
