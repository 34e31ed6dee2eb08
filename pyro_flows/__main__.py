"""``python -m pyro_flows``: see :mod:`pyro_flows.cli`."""

from pyro_flows.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
