"""The README's Python examples run as written."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_example_runs(code):
    from pyro_flows import data

    for name, loader in (
        ("binarized_mnist.npz", "binarized_mnist("),
        ("mnist.npz", "data.mnist("),
        ("spoken_digits.npz", "spoken_digits("),
    ):
        if loader in code and not (data.data_dir() / name).is_file():
            pytest.skip(f"this example reads {name}, which is absent (PYRO_FLOWS_DATA)")
    exec(compile(code, str(README), "exec"), {"__name__": "readme"})
