"""The offline data folder and the one reader of its ``.npz`` files, shared by the image and speech sets.

:func:`data_dir` says where the files are; :func:`read_npz` finds one (a ``path=`` argument or the folder),
reads the arrays a loader needs, and turns every way that can fail into an error naming the file: no such file
(``FileNotFoundError``), a ``path`` that is not a path (``TypeError``), an empty, corrupt or non-``.npz`` file,
or one that lacks some of the keys (``ValueError``). Nothing is downloaded.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["data_dir"]

_UNREADABLE = (ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy and zipfile raise on an empty, truncated, damaged or non-``.npz`` file."""


def data_dir() -> Path:
    """The offline data folder, where :func:`mnist`, :func:`binarized_mnist` and :func:`spoken_digits` look.

    ``$PYRO_FLOWS_DATA`` if set. Otherwise ``../shared/data`` relative to the current working directory
    (the project's offline data folder, beside a checkout run from its root); from a subfolder of the
    checkout (``tutorials/``, ``bench/``) the nearest ``../shared/data`` of a parent folder is used. The
    default never depends on where the package is installed: for an installed package, set
    ``PYRO_FLOWS_DATA`` or pass a path to the loader (e.g. :func:`mnist`).

    Returns:
        An absolute path; when no candidate exists, ``../shared/data`` of the working directory (so an
        error message names it).
    """
    env = os.environ.get("PYRO_FLOWS_DATA")
    if env:
        return Path(env)
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        candidate = folder.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return cwd.parent / "shared" / "data"


def data_file(path: object, name: str, what: str) -> Path:
    """The file a loader reads: ``path`` itself if it is a file, else ``name`` in the folder ``path`` (or in
    :func:`data_dir` when ``path`` is None); a ``path`` ending in ``.npz`` is taken as the file.

    Raises:
        TypeError: If ``path`` is not None, a str or an ``os.PathLike``.
        FileNotFoundError: If the file is absent (the message names the path and ``PYRO_FLOWS_DATA``).
    """
    if path is None:
        file = data_dir()
    elif isinstance(path, (str, os.PathLike)):
        file = Path(path)
    else:
        raise TypeError(
            f"path must be a path (str or os.PathLike) to {name} or to its folder, or None, got {type(path).__name__}"
        )
    if not file.is_file() and (file.is_dir() or file.suffix != ".npz"):
        file = file / name
    if not file.is_file():
        raise FileNotFoundError(
            f"{what} not found at {file}; set PYRO_FLOWS_DATA to the folder holding {name} "
            "(default: ../shared/data of the working directory or of a parent folder)"
        )
    return file


def read_npz(path: object, name: str, what: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` file that :func:`data_file` finds for ``path`` and ``name``.

    Args:
        path: A loader's ``path=`` argument: the file, its folder, or None for :func:`data_dir`.
        name: The file's name in its folder, e.g. ``"mnist.npz"``.
        what: The data set, for messages, e.g. ``"MNIST"``.
        keys: The arrays to read.

    Raises:
        TypeError: If ``path`` is not a path (see :func:`data_file`).
        FileNotFoundError: If the file is absent.
        ValueError: If the file is empty, corrupt or not a ``.npz`` archive, or lacks some of ``keys`` (the
            message names the file and the missing keys).
    """
    file = data_file(path, name, what)
    unreadable = f"cannot read {what} from {file}: it is not a .npz archive, or an empty or damaged one"
    try:
        archive = np.load(file, allow_pickle=False)
    except _UNREADABLE as err:
        raise ValueError(f"{unreadable} ({type(err).__name__})") from err
    if not isinstance(archive, np.lib.npyio.NpzFile):  # a .npy file holds one bare array
        raise ValueError(f"{unreadable} (it holds one array, as a .npy file does)")
    with archive:
        missing = [key for key in keys if key not in archive.files]
        if missing:
            raise ValueError(
                f"{file} lacks the keys {', '.join(missing)} that {what} needs (it has: "
                f"{', '.join(archive.files) or 'no arrays'}); is it {name}?"
            )
        try:
            return {key: archive[key] for key in keys}
        except _UNREADABLE as err:
            raise ValueError(f"{unreadable} ({type(err).__name__}: {err})") from err
