"""The API reference builds with warnings as errors, documents every public name, and links the tutorials.

Builds ``docs/`` with Sphinx into a temporary folder, as ``.ci/run`` does through this test:

    .venv/bin/python -m sphinx -W -n --keep-going -b html docs docs/_build/html

Skipped, with the reason, where Sphinx, furo or myst-nb is not installed. The build is offline (no intersphinx
inventories are fetched) and does not execute the notebooks.
"""

import importlib
import importlib.util
import pathlib
import subprocess
import sys

import pytest

MISSING = [name for name in ("sphinx", "furo", "myst_nb") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"docs build needs {', '.join(MISSING)} (pip install sphinx furo myst-nb)"
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "tutorials").glob("*.ipynb"))


def _submodules():
    import inspect

    import pyro_flows

    return [name for name in pyro_flows.__all__ if inspect.ismodule(getattr(pyro_flows, name))]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx -W failed:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
    return out


def _api_text(html):
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted((html / "api").glob("*.html")))


def _documented(text, qualname):
    """An object's description (``id="pyro_flows.X"``) or a module's target (``id="module-pyro_flows.X"``)."""
    return f'id="{qualname}"' in text or f'id="module-{qualname}"' in text


def test_every_public_name_is_documented(html):
    import pyro_flows

    api = _api_text(html)
    genindex = (html / "genindex.html").read_text(encoding="utf-8")
    missing = [name for name in pyro_flows.__all__ if not _documented(api, f"pyro_flows.{name}")]
    assert not missing, f"not on any page in docs/api/: {missing} (add them to the page of their topic)"
    not_indexed = [
        name
        for name in pyro_flows.__all__
        if f'#pyro_flows.{name}"' not in genindex and f'#module-pyro_flows.{name}"' not in genindex
    ]
    assert not not_indexed, f"not in genindex.html: {not_indexed}"


@pytest.mark.parametrize("module", _submodules())
def test_every_public_name_of_a_submodule_is_documented(html, module):
    """Each name of ``pyro_flows.<module>.__all__``, on the module's page or, if re-exported, as ``pyro_flows.X``."""
    import pyro_flows

    mod = importlib.import_module(f"pyro_flows.{module}")
    api = _api_text(html)
    missing = [
        name
        for name in mod.__all__
        if not _documented(api, f"pyro_flows.{module}.{name}")
        and not (getattr(pyro_flows, name, None) is getattr(mod, name) and _documented(api, f"pyro_flows.{name}"))
    ]
    assert not missing, f"pyro_flows.{module}: not documented: {missing} (docs/api/{module}.rst)"


def test_tutorials_are_rendered_and_linked(html):
    assert NOTEBOOKS, "no notebooks in tutorials/"
    index = (html / "tutorials" / "index.html").read_text(encoding="utf-8")
    for stem in NOTEBOOKS:
        page = html / "tutorials" / f"{stem}.html"
        assert page.is_file(), (
            f"tutorials/{stem}.ipynb has no docs page: symlink it into docs/tutorials/ and add "
            f"it to the toctree in docs/tutorials/index.md"
        )
        assert f'href="{stem}.html"' in index, f"docs/tutorials/index.md does not link {stem}"
        assert "cell_output" in page.read_text(encoding="utf-8"), f"{stem}: saved outputs not rendered"
    assert 'href="tutorials/index.html"' in (html / "index.html").read_text(encoding="utf-8")
