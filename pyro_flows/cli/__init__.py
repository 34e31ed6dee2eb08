"""The command line, ``python -m pyro_flows``: the commands moved into a package (step 1 of issue 16)."""

from .fit import FLOWS, build_flow, main, make_parser, run_fit

__all__ = ["FLOWS", "build_flow", "main", "make_parser", "run_fit"]
