"""Every notebook in tutorials/ runs in smoke mode, and is saved executed (with its full-mode outputs).

Smoke mode: ``PYRO_FLOWS_SMOKE=1`` in the kernel's environment; the notebooks read it and cut data sizes and
steps so that each runs in well under a minute. The kernel is ``python3`` launched with this interpreter
(jupyter_client replaces a kernelspec's ``python`` by ``sys.executable``), so it sees the same environment
and the same pyro_flows; a first injected cell checks that. Cells run with ``tutorials/`` as working directory.

A notebook that needs a data set pyro_flows does not make (MNIST) says so in its metadata,
``{"pyro_flows": {"requires": ["mnist"]}}`` (written by ``tutorials/_build.py`` from the cell module's ``REQUIRES``);
where that data set is absent its smoke run is skipped with the reason, not failed and not silently passed.
"""

import pathlib
import re
import subprocess
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIALS = pathlib.Path(__file__).resolve().parents[1] / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]
SMOKE_BANNER = "smoke mode:"  # what a notebook prints when PYRO_FLOWS_SMOKE=1
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in kernel tracebacks


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _missing(loader: str):
    """``() -> why pf.data.<loader>() cannot load, or None``."""

    def why():
        import pyro_flows as pf

        try:
            getattr(pf.data, loader)()
        except FileNotFoundError as err:
            return str(err)
        return None

    return why


# name -> why absent, or None
REQUIREMENTS = {name: _missing(name) for name in ("mnist", "binarized_mnist", "spoken_digits")}


def skip_unless_available(nb, name):
    """Skips the test when a data set named in the notebook's metadata is absent; fails on an unknown name."""
    for requirement in nb.metadata.get("pyro_flows", {}).get("requires", []):
        if requirement not in REQUIREMENTS:
            pytest.fail(f"{name} requires {requirement!r}, which tests/test_tutorials.py does not know how to check")
        missing = REQUIREMENTS[requirement]()
        if missing:
            pytest.skip(f"{name} needs {requirement}: {missing}")


def test_there_are_tutorials():
    assert NOTEBOOKS, f"no notebooks in {TUTORIALS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_tutorial_runs_in_smoke_mode(path, monkeypatch):
    monkeypatch.setenv("PYRO_FLOWS_SMOKE", "1")  # inherited by the kernel process
    nb = nbformat.read(path, as_version=4)
    skip_unless_available(nb, path.name)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    client = nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        record_timing=False,
        resources={"metadata": {"path": str(TUTORIALS)}},
    )
    failure = None
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as err:  # carries the cell's source and traceback
        failure = ANSI.sub("", str(err))
    if failure is not None:
        pytest.fail(f"{path.name}: a cell raised\n{failure}", pytrace=False)
    kernel_prefix = nb.cells[0].outputs[0]["text"].strip()
    assert kernel_prefix == sys.prefix, f"the kernel ran {kernel_prefix}, not this environment ({sys.prefix})"
    streams = "".join(o.get("text", "") for c in code_cells(nb) for o in c.outputs)
    assert SMOKE_BANNER in streams, "the notebook did not see PYRO_FLOWS_SMOKE=1"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_tutorial_is_saved_with_full_outputs(path):
    # The committed notebook shows a complete full-mode run: every code cell executed in order, no errors,
    # the figures embedded, and not the smoke run.
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "re-run the notebook top to bottom"
    outputs = [o for c in cells for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], "the saved notebook contains an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure saved"
    text = "".join(o.get("text", "") for o in outputs)
    assert SMOKE_BANNER not in text, "the saved notebook is a smoke run; run tutorials/_build.py --execute"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_tutorial_declares_the_data_it_loads(path):
    # A notebook that loads MNIST must say so, so that the smoke test skips it (with the reason) without MNIST.
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(c.source for c in code_cells(nb))
    requires = nb.metadata.get("pyro_flows", {}).get("requires", [])
    if "data.mnist(" in source:
        assert "mnist" in requires, "the notebook loads MNIST: set REQUIRES = ['mnist'] in its cell module"
    if "data.binarized_mnist(" in source:
        assert "binarized_mnist" in requires, "the notebook loads binarized MNIST: add it to REQUIRES"
    assert set(requires) <= set(REQUIREMENTS), f"unknown requirements {sorted(set(requires) - set(REQUIREMENTS))}"


def test_saved_notebooks_match_their_cell_modules():
    # tutorials/_build.py --check: every saved notebook has the cells (and metadata) of its _cells_NN.py
    done = subprocess.run(
        [sys.executable, str(TUTORIALS / "_build.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"re-run tutorials/_build.py for:\n{done.stdout}{done.stderr}"
