"""Speech: the spoken digits (8 kHz 16-bit waveforms with digit and speaker labels) and windows cropped from them.

:func:`spoken_digits` reads ``spoken_digits.npz`` of the offline data folder (nothing is downloaded) and returns
a :class:`Speech`, whole zero-padded clips or one window per clip; :func:`speech_windows` crops fresh windows
from whole clips, e.g. once per epoch. Both can add one 16-bit quantization step of uniform noise
(``add_noise=True``), the speech analogue of ``pyro_flows.data.dequantize`` for pixels.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
import torch

from ..validation import renamed_argument
from .common import check_flag, check_int
from .files import read_npz

__all__ = ["SPEECH_SPLITS", "Speech", "speech_windows", "spoken_digits"]

SPEECH_SPLITS = ("train", "valid", "test")
"""Names of the splits of :func:`spoken_digits`."""

_INT16_STEP = 1.0 / 32768  # one 16-bit quantization step in [-1, 1) units


class Speech(NamedTuple):
    """Waveforms with their labels, as :func:`spoken_digits` and :func:`speech_windows` return them.

    Row ``i`` of ``x`` holds samples ``start[i] .. start[i] + x.shape[1] - 1`` of clip ``i``; the clip's own
    samples are ``0 .. length[i] - 1`` (a whole clip is zero-padded after ``length``).
    """

    x: torch.Tensor
    """``(N, T)`` float32 waveforms in ``[-1, 1)``: whole clips (``T = 8192``) or windows (``T = window``)."""
    digit: torch.Tensor
    """``(N,)`` int64 spoken digit, 0..9."""
    speaker: torch.Tensor
    """``(N,)`` int64 speaker id: an index into :attr:`speakers`."""
    speakers: tuple[str, ...]
    """The names of all voices of the data set, sorted; ids are the same in every split (no voice is in two)."""
    length: torch.Tensor
    """``(N,)`` int64 true length of each clip, in samples, before its zero padding."""
    start: torch.Tensor
    """``(N,)`` int64 offset of ``x[:, 0]`` in its clip (zeros for whole clips)."""
    sample_rate: int
    """Samples per second (8000)."""

    @property
    def speaker_names(self) -> tuple[str, ...]:
        """The speaker name of every row (``speakers[speaker[i]]``)."""
        return tuple(self.speakers[i] for i in self.speaker.tolist())


def _check_window(window: object, shortest: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)):
        raise TypeError(f"window must be a positive int (samples) or None for whole clips, got {window!r}")
    if not 1 <= window <= shortest:
        raise ValueError(
            f"window must be a positive int of at most {shortest} samples (the shortest clip, so that every "
            f"window lies inside its clip's true length), got {window!r}"
        )
    return int(window)


def _dequantize_speech(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``(k + u) / 32768`` with ``k = floor(32768 x)`` and fresh ``u ~ U[0, 1)``, kept below 1."""
    k = torch.floor(x * 32768)  # exact: x holds k / 32768 (or k / 32768 plus noise below one step)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    # k = 32767 with u near 1 can round up to 1.0 in float32: keep the promise of [-1, 1)
    return ((k + u) * _INT16_STEP).clamp_(max=1.0 - 2.0**-24)


def _noise_flag(deprecated: dict, add_noise: bool | None, *, owner: str) -> bool:
    """``add_noise``, or the value of its deprecated name ``dequantize=`` (with a ``DeprecationWarning``; both is a
    ``TypeError``); a ``TypeError`` for any other keyword in ``deprecated`` or a value that is not a bool."""
    add_noise = renamed_argument(deprecated, "dequantize", "add_noise", add_noise, owner=owner)
    if deprecated:
        raise TypeError(f"{owner}() got an unexpected keyword argument {next(iter(deprecated))!r}")
    return check_flag("add_noise", False if add_noise is None else add_noise, owner=owner)


def speech_windows(
    clips: Speech,
    window: int,
    *,
    center: bool = False,
    add_noise: bool | None = None,
    generator: torch.Generator | None = None,
    drop_short: bool = False,
    **deprecated: bool,
) -> Speech:
    """Crops one window of ``window`` samples from each whole clip, inside its true length.

    Each window starts at ``start`` in ``0 .. length - window``, so it holds none of the clip's zero
    padding: uniformly at random (drawn from ``generator``) by default, or centered,
    ``start = (length - window) // 2``, with ``center=True``. Call it once per epoch on the whole clips of
    :func:`spoken_digits` for fresh training crops.

    Args:
        clips: Whole clips, as ``spoken_digits(split)`` returns them (``window=None``).
        window: Samples per window, a positive int no longer than the shortest clip.
        center: Centered windows instead of random ones (deterministic).
        add_noise: Replace each sample ``k / 32768`` by ``(k + u) / 32768`` with fresh ``u ~ U[0, 1)``
            (one 16-bit quantization step of uniform noise, i.e. dequantization; samples that have noise
            already get new noise). ``None``, the default, is False.
        generator: Optional ``torch.Generator`` for the random starts and the noise.
        drop_short: Leave out the clips shorter than ``window`` (else they are an error).
        **deprecated: ``dequantize=``, the old name of ``add_noise``: it still works, with a
            ``DeprecationWarning``, until 0.4.

    Returns:
        A :class:`Speech` whose ``x`` has shape ``(N, window)``, with the clips' labels and lengths and the
        windows' ``start``.

    Raises:
        TypeError: If ``clips`` is not a :class:`Speech`, ``window`` is not an int, ``center``, ``add_noise`` or
            ``drop_short`` is not a bool, or both ``add_noise`` and ``dequantize`` are given.
        ValueError: If ``clips`` are windows already, ``window`` is not positive, or some clip is shorter than
            ``window`` and ``drop_short`` is False.

    Example:
        >>> clips = Speech(torch.arange(8.0).reshape(2, 4) / 32768, torch.tensor([3, 7]), torch.tensor([0, 1]),
        ...                ("a", "b"), torch.tensor([4, 3]), torch.zeros(2, dtype=torch.long), 8000)
        >>> w = speech_windows(clips, 2, center=True)
        >>> (w.x * 32768).tolist(), w.start.tolist()
        ([[1.0, 2.0], [4.0, 5.0]], [1, 0])
    """
    add_noise = _noise_flag(deprecated, add_noise, owner="speech_windows")
    center = check_flag("center", center, owner="speech_windows")
    drop_short = check_flag("drop_short", drop_short, owner="speech_windows")
    if not isinstance(clips, Speech):
        raise TypeError(f"speech_windows expected the Speech of spoken_digits(split), got {type(clips).__name__}")
    if bool((clips.start != 0).any()) or clips.x.shape[-1] < int(clips.length.max()):
        raise ValueError(
            "speech_windows expected whole clips (spoken_digits(split) with window=None), got windows of "
            f"{clips.x.shape[-1]} samples"
        )
    window = _check_window(window, int(clips.length.max()))
    short = clips.length < window
    if bool(short.any()):
        if not drop_short:
            raise ValueError(
                f"{int(short.sum())} of {len(short)} clips are shorter than window={window} samples (the shortest "
                f"has {int(clips.length.min())}): pass drop_short=True to leave them out, or a shorter window"
            )
        keep = ~short
        clips = clips._replace(
            x=clips.x[keep],
            digit=clips.digit[keep],
            speaker=clips.speaker[keep],
            length=clips.length[keep],
            start=clips.start[keep],
        )
    room = clips.length - window  # the last valid start of each clip
    if center:
        start = room // 2
    else:
        u = torch.rand(room.shape, generator=generator, dtype=torch.float64)
        start = torch.minimum((u * (room + 1)).floor().long(), room)
    index = start[:, None] + torch.arange(window)
    x = clips.x.gather(1, index.to(clips.x.device))
    if add_noise:
        x = _dequantize_speech(x, generator)
    return clips._replace(x=x, start=start)


def spoken_digits(
    split: str = "train",
    *,
    window: int | None = None,
    add_noise: bool | None = None,
    seed: int = 0,
    path: str | os.PathLike | None = None,
    drop_short: bool = False,
    **deprecated: bool,
) -> Speech:
    """Spoken digits "zero" .. "nine", 8 kHz 16-bit speech of 32 synthetic voices, split by speaker.

    Reads ``spoken_digits.npz`` (nothing is downloaded; see the data folder's README): 1440 train, 240
    validation and 240 test clips of 1920..5959 samples (0.24..0.74 s), each zero-padded to 8192 samples;
    24, 4 and 4 voices, no voice in two splits. Samples are ``k / 32768`` for the 16-bit integers ``k``, so
    they lie in ``[-1, 1)`` (compand them with :class:`pyro_flows.MuLaw`).

    Windows: with ``window``, each clip gives one window of that many samples lying inside its true length
    (no padding). Train windows start uniformly at random, drawn from ``seed``; valid and test windows are
    centered, ``start = (length - window) // 2``, the same on every call. For fresh train crops each epoch,
    load the whole clips once and call :func:`speech_windows` with a ``torch.Generator``.

    Noise (``add_noise=True``, dequantization): ``x = (k + u) / 32768`` with ``u ~ U[0, 1)`` drawn from
    ``seed``, one quantization step of uniform noise, as :func:`dequantize` adds to 8-bit images; then a density
    of ``x`` lower-bounds the discrete likelihood of ``k``, and ``nats + T log(32768)`` per window of ``T``
    samples is its NLL in integer units. Whole clips get noise on their padding too: mask it out of a
    likelihood.

    Args:
        split: One of :data:`SPEECH_SPLITS`: ``"train"``, ``"valid"`` or ``"test"``.
        window: Samples per window, a positive int (at most 8192); ``None`` for the whole zero-padded
            clips. Longer than the shortest clip (1920), it needs ``drop_short``.
        add_noise: Add one quantization step of uniform noise (see above). ``None``, the default, is False.
        seed: Seed of the train windows' starts and of the noise, a non-negative int.
        path: The ``.npz`` file or the folder holding ``spoken_digits.npz``; default :func:`data_dir`.
        drop_short: Leave out the clips shorter than ``window`` (3 train clips for ``window=2048``; every
            valid and test clip is at least 2102 samples long); without it they are an error.
        **deprecated: ``dequantize=``, the old name of ``add_noise``: it still works, with a
            ``DeprecationWarning``, until 0.4.

    Returns:
        A :class:`Speech`: ``x`` float32 of shape ``(N, 8192)`` or ``(N, window)``, ``digit``, ``speaker``
        (ids into ``speakers``; ``speaker_names`` gives each row's name), ``length``, ``start`` and
        ``sample_rate``.

    Raises:
        ValueError: If ``split`` is unknown, ``window`` is not positive or (without ``drop_short``) longer than a
            clip, ``seed`` is not a non-negative int, or the file is empty, corrupt, not a ``.npz`` archive or
            lacks some of the arrays (the message names the file and the missing keys).
        TypeError: If ``window`` is not an int or None, ``add_noise`` or ``drop_short`` is not a bool, both
            ``add_noise`` and ``dequantize`` are given, or ``path`` is not a str, an ``os.PathLike`` or None.
        FileNotFoundError: If the file is absent (the message names the path and the setting).
    """
    if not isinstance(split, str) or split not in SPEECH_SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits are: {', '.join(SPEECH_SPLITS)}")
    seed = check_int("seed", seed, minimum=0)
    add_noise = _noise_flag(deprecated, add_noise, owner="spoken_digits")
    drop_short = check_flag("drop_short", drop_short, owner="spoken_digits")
    if window is not None:
        _check_window(window, 8192)  # the argument's type and sign, before reading the file
    keys = [*(f"{s}_speaker" for s in SPEECH_SPLITS), f"{split}_x", f"{split}_digit", f"{split}_length", "sample_rate"]
    f = read_npz(path, "spoken_digits.npz", "the spoken digits", keys)
    names = np.unique(np.concatenate([f[f"{s}_speaker"] for s in SPEECH_SPLITS]))
    speaker = np.searchsorted(names, f[f"{split}_speaker"])
    clips = Speech(
        x=torch.from_numpy(f[f"{split}_x"]).float() * _INT16_STEP,
        digit=torch.from_numpy(f[f"{split}_digit"].astype(np.int64)),
        speaker=torch.from_numpy(speaker.astype(np.int64)),
        speakers=tuple(str(n) for n in names),
        length=torch.from_numpy(f[f"{split}_length"].astype(np.int64)),
        start=torch.zeros(len(speaker), dtype=torch.long),
        sample_rate=int(f["sample_rate"]),
    )
    generator = torch.Generator().manual_seed(seed)
    if window is not None:
        return speech_windows(
            clips, window, center=split != "train", add_noise=add_noise, generator=generator, drop_short=drop_short
        )
    if add_noise:
        clips = clips._replace(x=_dequantize_speech(clips.x, generator))
    return clips
