"""Test-wide settings: one torch thread (tests run small ops; on a shared 2-core machine two threads spin-wait),
and the contract test's ``--dtype`` and ``--device`` options."""

import pytest
import torch

torch.set_num_threads(1)

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def pytest_addoption(parser):
    group = parser.getgroup("pyro_flows")
    group.addoption(
        "--dtype",
        choices=sorted(DTYPES),
        default="float32",
        help="default dtype the contract test builds its cases in (default: float32)",
    )
    group.addoption(
        "--device",
        default="cpu",
        help="device the contract test builds its cases on, e.g. cuda (default: cpu); skips when the device is absent",
    )


@pytest.fixture
def contract_defaults(request):
    """The contract test's cases are built with ``--dtype`` and ``--device`` as torch's defaults."""
    dtype = DTYPES[request.config.getoption("--dtype")]
    device = torch.device(request.config.getoption("--device"))
    if device.type == "cuda" and not torch.cuda.is_available():
        pytest.skip(f"--device {device}: no CUDA device here")
    old_dtype, old_device = torch.get_default_dtype(), torch.get_default_device()
    torch.set_default_dtype(dtype)
    torch.set_default_device(device)
    yield dtype, device
    torch.set_default_dtype(old_dtype)
    torch.set_default_device(old_device)
