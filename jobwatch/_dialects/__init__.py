"""API dialects: one module per API, each turning a parsed body into snapshots."""

from __future__ import annotations

from jobwatch._dialects import _engine, _evs, _ges
from jobwatch._dialects._common import decode_json, raise_for_error_body
from jobwatch._dialects._engine import MAX_LIMIT, EnginePage
from jobwatch._refs import EvsJob, GesEngineJob, GesJob, JobRef
from jobwatch._snapshot import JobSnapshot

__all__ = [
    "MAX_LIMIT",
    "EnginePage",
    "decode_json",
    "parse_engine_page",
    "parse_snapshot",
    "raise_for_error_body",
]

parse_engine_page = _engine.parse_page


def parse_snapshot(ref: JobRef, data: object) -> JobSnapshot:
    """Read the status body of ``ref``'s API into a snapshot (not for engine jobs)."""
    if isinstance(ref, EvsJob):
        return _evs.parse(ref, data)
    if isinstance(ref, GesJob):
        return _ges.parse(ref, data)
    if isinstance(ref, GesEngineJob):
        raise TypeError("engine jobs are read from their graph's job list: use parse_engine_page")
    raise TypeError(f"not a job reference: {ref!r}")
