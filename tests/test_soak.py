"""A small fault soak on both backends (``make soak`` runs the full one)."""

from __future__ import annotations

import pytest
from soak import FAULTS, soak

pytestmark = pytest.mark.anyio


async def test_small_soak_loses_and_duplicates_nothing() -> None:
    report = await soak(jobs=150, seed=3, in_process=True, span=3.0)
    assert report.problems == []
    assert (report.lost, report.duplicated) == (0, 0)
    assert (report.without_outcome, report.with_two_outcomes) == (0, 0)
    assert report.checked == report.transitions > report.jobs
    assert sum(report.outcomes.values()) == report.jobs + report.sub_jobs
    # the faults really were injected, at roughly the planned rate
    assert len(report.faults) >= len({f.kind for f in FAULTS}) - 1
    assert 0.08 < sum(report.faults.values()) / report.requests < 0.35
