"""Bad-input fuzzing (tests/fuzz.py): every probe must end in a clear error or a correct result.

``python tests/fuzz.py --list`` prints the table of outcome classes per probe family and every offender.
"""

from __future__ import annotations

import fuzz
import pytest


def test_probes_are_seeded_and_cover_every_family_and_case():
    names = [(p.family, p.name) for p in fuzz.generate()]
    assert names == [(p.family, p.name) for p in fuzz.generate()], "the same seed must give the same probes"
    assert len(names) >= 300
    assert {family for family, _ in names} == set(fuzz.FAMILIES)
    probed = {name.split(":")[0] for family, name in names if family in ("shape", "dtype", "empty", "context")}
    assert probed == set(fuzz.CASES)


def test_every_probe_ends_in_a_clear_error_or_a_correct_result():
    outcomes = fuzz.run_all()
    bad = [o for o in outcomes if o.cls not in fuzz.OK]
    if bad:
        pytest.fail(
            f"{len(bad)} of {len(outcomes)} bad-input probes did not end in a clear error or a correct result:\n"
            + fuzz.table(outcomes)
            + "\n"
            + "\n".join(o.line() for o in bad),
            pytrace=False,
        )
