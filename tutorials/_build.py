"""Writes the tutorial notebooks from their cell lists and, with ``--execute``, runs them and saves their outputs.

Notebook ``NN_name.ipynb`` is defined by the module ``tutorials/_cells_NN.py``: ``NOTEBOOK`` (its file name),
``CELLS``, a list of ``("md" | "code", source)`` pairs, and optionally ``REQUIRES``, the data sets it needs beyond
what pyro_flows makes itself (e.g. ``["mnist"]``), written to the notebook metadata as
``{"pyro_flows": {"requires": [...]}}`` so that the tests can skip it, with the reason, where they are absent.
Edit the cells there, not in Jupyter, so that the source stays reviewable.

    .venv/bin/python tutorials/_build.py 02             # write 02_*.ipynb without outputs
    .venv/bin/python tutorials/_build.py 02 --execute   # write it, run it in full mode, save it with its outputs
    .venv/bin/python tutorials/_build.py --execute      # the same for every notebook (takes minutes each)
    .venv/bin/python tutorials/_build.py --check        # exit 1 if a saved notebook's cells differ from its module

The tests (``tests/test_tutorials.py``) run every notebook in ``tutorials/`` in smoke mode (``PYRO_FLOWS_SMOKE=1``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import sys
import time

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent


def cell_modules() -> dict[str, pathlib.Path]:
    """``{"01": tutorials/_cells_01.py, ...}``: every notebook's cell module, by number."""
    return {p.stem.removeprefix("_cells_"): p for p in sorted(HERE.glob("_cells_*.py"))}


def load(key: str):
    """The cell module of notebook ``key`` (e.g. ``"02"``), with its ``NOTEBOOK`` and ``CELLS``."""
    path = cell_modules()[key]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(cells, requires=()) -> nbformat.NotebookNode:
    """The notebook of ``cells`` (a list of ``("md" | "code", source)``), without outputs; ``requires`` (data set
    names) goes to its metadata as ``{"pyro_flows": {"requires": [...]}}``."""
    nb_cells = []
    for i, (kind, text) in enumerate(cells):
        if kind not in ("md", "code"):
            raise ValueError(f"cell {i}: kind must be 'md' or 'code', got {kind!r}")
        text = text.strip("\n")
        cell = new_markdown_cell(text) if kind == "md" else new_code_cell(text)
        cell.id = f"cell-{i:02d}"  # stable ids: rebuilding gives a clean diff
        nb_cells.append(cell)
    nb = new_notebook(cells=nb_cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if requires:
        nb.metadata["pyro_flows"] = {"requires": list(requires)}
    return nb


def build_module(module) -> nbformat.NotebookNode:
    """The notebook of a cell module (its ``CELLS`` and ``REQUIRES``), without outputs."""
    return build(module.CELLS, getattr(module, "REQUIRES", ()))


def execute(nb: nbformat.NotebookNode, *, timeout: int = 600) -> float:
    """Runs ``nb`` in place with the ``python3`` kernel of this interpreter, in ``tutorials/``; returns seconds."""
    from nbclient import NotebookClient

    start = time.perf_counter()
    NotebookClient(
        nb, kernel_name="python3", timeout=timeout, record_timing=False, resources={"metadata": {"path": str(HERE)}}
    ).execute()
    for cell in nb.cells:  # one stream output per cell and stream, as Jupyter shows them
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if last and out.output_type == last.output_type == "stream" and out.name == last.name:
                last.text += out.text
            else:
                merged.append(out)
        if "outputs" in cell:
            cell.outputs = merged
    return time.perf_counter() - start


def stale(key: str) -> str | None:
    """Why the saved notebook ``key`` does not match its cell module, or ``None`` when its cells are the same."""
    module = load(key)
    path = HERE / module.NOTEBOOK
    if not path.exists():
        return f"{path.name} does not exist"
    saved_nb, built_nb = nbformat.read(path, as_version=4), build_module(module)
    if saved_nb.metadata.get("pyro_flows") != built_nb.metadata.get("pyro_flows"):
        return f"{path.name}: metadata 'pyro_flows' differs from _cells_{key}.py's REQUIRES"
    saved, built = saved_nb.cells, built_nb.cells
    if len(saved) != len(built):
        return f"{path.name} has {len(saved)} cells, _cells_{key}.py {len(built)}"
    for a, b in zip(saved, built):
        if (a.cell_type, a.source, a.get("id")) != (b.cell_type, b.source, b.get("id")):
            return f"{path.name}: cell {b.id} differs from _cells_{key}.py"
    return None


def main() -> None:
    keys = list(cell_modules())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "notebooks", nargs="*", metavar="NN", help=f"which notebooks ({', '.join(keys)}); all when none is given"
    )
    parser.add_argument("--execute", action="store_true", help="run the notebooks in full mode and save their outputs")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a saved notebook's cells differ from its cell module",
    )
    args = parser.parse_args()
    unknown = [k for k in args.notebooks if k not in keys]
    if unknown:
        parser.error(f"no tutorials/_cells_NN.py for {', '.join(unknown)} (have {', '.join(keys)})")
    selected = args.notebooks or keys
    if args.check:
        problems = [p for p in map(stale, selected) if p]
        print("\n".join(problems) or f"up to date: {', '.join(selected)}")
        sys.exit(1 if problems else 0)
    if args.execute and os.environ.get("PYRO_FLOWS_SMOKE") == "1":
        sys.exit("unset PYRO_FLOWS_SMOKE: the saved notebook must show the full run")
    for key in selected:
        module = load(key)
        nb = build_module(module)
        if args.execute:
            seconds = execute(nb)
            print(f"{module.NOTEBOOK}: executed in {seconds:.0f} s")
        nbformat.validate(nb)
        path = HERE / module.NOTEBOOK
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
