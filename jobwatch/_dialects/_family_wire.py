"""The wire models of the EVS-style job family (imported at their first use: ``WireModel``)."""

from __future__ import annotations

from typing import Any

import pydantic

from jobwatch._dialects._common import WIRE_CONFIG

__all__ = ["FamilyJobWire", "FamilySubJobWire"]


class FamilyJobWire(pydantic.BaseModel):
    """The wire form of a family job (and of each of its sub-jobs)."""

    model_config = WIRE_CONFIG

    status: str
    job_id: str | None = None
    job_type: str | None = None
    begin_time: Any = None  # ISO 8601 text, or DCS's milliseconds: read by the service
    end_time: Any = None
    error_code: str | None = None
    fail_reason: str | None = None
    entities: dict[str, Any] | None = None


class FamilySubJobWire(FamilyJobWire):
    """The wire form of a sub-job: as its parent's, but a status may be missing."""

    status: str | None = None  # type: ignore[assignment]  # optional here only
