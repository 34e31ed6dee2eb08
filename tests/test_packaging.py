"""Packaging: a lean install (matplotlib and scikit-learn are extras) and metadata (setup.cfg) that says so."""

import configparser
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _setup_cfg() -> dict:
    """setup.cfg's dependencies and extras, in the shape of a PEP 621 ``project`` table."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")

    def lines(text):
        return [line.split("#")[0].strip() for line in text.splitlines() if line.split("#")[0].strip()]

    return {
        "project": {
            "dependencies": lines(cfg["options"]["install_requires"]),
            "optional-dependencies": {k: lines(v) for k, v in cfg["options.extras_require"].items()},
        }
    }


PYPROJECT = _setup_cfg()

# Run in a fresh interpreter where matplotlib and scikit-learn cannot be imported (a None entry in
# sys.modules makes `import x` raise ImportError), as after `pip install pyro_flows` without extras.
WITHOUT_EXTRAS = textwrap.dedent(
    """
    import sys
    sys.modules["matplotlib"] = None
    sys.modules["sklearn"] = None

    import pyro_flows as pf
    import pyro_flows.plots

    def raises(call, extra):
        try:
            call()
        except ImportError as err:
            assert f"pyro_flows[{extra}]" in str(err), str(err)
        else:
            raise AssertionError(f"{call} did not raise ImportError")

    raises(lambda: pf.plots.plot_history(pf.History([1], [1.0], [1.0]), "unused.png"), "plots")
    raises(lambda: pf.data.load("moons"), "datasets")
    raises(lambda: pf.data.digits(), "datasets")
    assert pf.data.load("eight_gaussians", n_train=10, n_valid=5, n_test=5).train.shape == (10, 2)
    print("ok", pf.__version__)
    """
)


def test_import_needs_neither_matplotlib_nor_sklearn(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok ")
    assert not list(tmp_path.iterdir()), "nothing should have been written"


def test_install_requirements_are_the_import_time_ones():
    names = {_name(req) for req in PYPROJECT["project"]["dependencies"]}
    assert names == {"numpy", "torch", "pyro-ppl", "tqdm"}
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {_name(req) for req in extras["plots"]} == {"matplotlib"}
    assert {_name(req) for req in extras["datasets"]} == {"scikit-learn"}
    for extra in ("cli", "test"):
        assert "pyro_flows[plots,datasets]" in extras[extra], extra


def test_version_floors_match_the_tested_pins():
    # requirements.txt pins what the suite runs against; setup.cfg's floors claim no older versions.
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip()] = version.strip()
    floors = dict(req.split(">=") for req in PYPROJECT["project"]["dependencies"] if ">=" in req)
    for name in ("torch", "pyro-ppl"):
        assert pins[name].startswith(floors[name]), (name, pins[name], floors[name])


def _name(requirement: str) -> str:
    for stop in "<>=!;[ ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()
