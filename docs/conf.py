"""Sphinx configuration for the pyro_flows API reference and tutorials.

Build (offline, warnings as errors, about half a minute)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The API pages in ``api/`` are written by hand, grouped by topic; ``tests/test_docs.py`` builds the docs and fails,
naming the missing names, if a name in ``pyro_flows.__all__`` (or a documented submodule's ``__all__``) is not on a
page. The tutorials are the notebooks in ``tutorials/`` (symlinked from ``docs/tutorials/``), rendered with their
saved outputs and never executed here.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pyro_flows  # noqa: E402

project = "pyro_flows"
author = "pyro_flows contributors"
copyright = "pyro_flows contributors"
release = pyro_flows.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "myst_nb",  # also registers myst_parser for .md pages
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# -- autodoc / napoleon ------------------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_inherit_docstrings = False  # document pyro_flows's own docstrings, not torch's or Pyro's
autodoc_default_options = {"show-inheritance": True}
add_module_names = False

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- intersphinx: no network at build time ---------------------------------------------------------------------------
# The build must run offline, so no inventory is fetched. To link torch/Pyro/Python names, add entries with a local
# inventory file, e.g. {"python": ("https://docs.python.org/3", "_inv/python.inv")}.
intersphinx_mapping: dict = {}
intersphinx_disabled_reftypes = ["*"]

# -- MyST / myst-nb ----------------------------------------------------------------------------------------------------
nb_execution_mode = "off"  # render the notebooks' saved outputs; never run them during a docs build
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- HTML --------------------------------------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"pyro_flows {release}"
html_static_path: list = []


# -- nitpicky mode (``-n``) -------------------------------------------------------------------------------------------
# Without intersphinx inventories, torch/Pyro/stdlib names cannot resolve; ``-n`` then reports only pyro_flows's own
# broken references.
nitpick_ignore_regex = [
    (r"py:.*", r"(torch|pyro|pathlib|os|typing|collections|numpy|nn)\..*"),
    (r"py:.*", r"(Tensor|torch|int|float|str|bool|None|Optional|callable)"),
]


def _skip_private_bases(app, name, obj, options, bases):
    """Show a private base class (``_Cached``, ``_Wrapper``) as its own bases, so ``Bases:`` names public classes."""
    i = 0
    while i < len(bases):
        private = bases[i].__name__.startswith("_") or bases[i].__module__ == "pyro_flows.cache"
        if private and bases[i] is not object:
            bases[i : i + 1] = [b for b in bases[i].__bases__ if b not in bases]
        else:
            i += 1


# -- cross-references by defining-module path --------------------------------------------------------
# Docstrings may name an object by where it is defined (``pyro_flows.flows.maf``, ``pyro_flows.base.Flow``) while
# the reference documents it where users import it (``pyro_flows.maf``). Classes get autodoc's ``:canonical:`` for free;
# this resolves the remaining references (functions, data) to the public name of the same object.
DOCUMENTED_MODULES = (
    "pyro_flows",
    "pyro_flows.nn",
    "pyro_flows.ops",
    "pyro_flows.masks",
    "pyro_flows.data",
    "pyro_flows.orderings",
    "pyro_flows.validation",
    "pyro_flows.state",
    "pyro_flows.models",
)
EXTRA_DOCUMENTED = ("pyro_flows.transforms.coupling.coupling_conditioner",)


def _public_names() -> dict[int, str]:
    names: dict[int, str] = {}
    for modname in DOCUMENTED_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                names.setdefault(id(obj), f"{modname}.{name}")
    for dotted in EXTRA_DOCUMENTED:
        names.setdefault(id(_lookup(dotted)), dotted)
    return names


def _lookup(dotted: str):
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_public(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("pyro_flows."):  # a bare name: the one the current module imports, if any
        module = node.get("py:module") or ""
        if not module.startswith("pyro_flows") or _lookup(f"{module}.{target}") is None:
            return None
        target = f"{module}.{target}"
    parts = target.split(".")
    # a method or attribute: map its owner, keep the rest
    for i in range(len(parts), 1, -1):
        obj = _lookup(".".join(parts[:i]))
        if obj is None:
            continue
        public = _PUBLIC.get(id(obj))
        if public is None:
            return None
        new_target = ".".join([public, *parts[i:]])
        if new_target == target:
            return None
        domain = env.get_domain("py")
        return domain.resolve_xref(
            env, node.get("refdoc"), app.builder, node.get("reftype"), new_target, node, contnode
        )
    return None


_PUBLIC = _public_names()


def _list_new_transforms(app, docname, source):
    """api/transforms lists every name of ``pyro_flows.transforms.__all__``: those its text does not place in a
    section yet are appended under "More transforms", so a new transform needs no docs edit to be documented."""
    if docname != "api/transforms":
        return
    import pyro_flows.transforms as transforms

    text = source[0]
    missing = [n for n in transforms.__all__ if f":: {n}\n" not in text and not text.rstrip().endswith(f":: {n}")]
    if missing:
        entries = []
        for name in missing:
            kind = "autoclass" if inspect.isclass(getattr(transforms, name)) else "autofunction"
            entries.append(f".. {kind}:: {name}\n" + ("   :members:\n" if kind == "autoclass" else ""))
        source[0] = text.rstrip() + "\n\nMore transforms\n---------------\n\n" + "\n".join(entries)


def setup(app):
    app.connect("source-read", _list_new_transforms)
    app.connect("missing-reference", _resolve_public)
    app.connect("autodoc-process-bases", _skip_private_bases)
