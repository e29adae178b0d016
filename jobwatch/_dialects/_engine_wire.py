"""The wire models of GES engine jobs (imported at their first use: ``WireModel``)."""

from __future__ import annotations

from typing import Any

import pydantic
from pydantic import AliasChoices, Field

from jobwatch._dialects._common import WIRE_CONFIG

__all__ = ["EngineJobWire", "EngineListWire", "EngineStatusWire"]


class EngineJobWire(pydantic.BaseModel):
    """One entry of ``jobs``."""

    model_config = WIRE_CONFIG

    job_id: str = Field(validation_alias=AliasChoices("jobId", "job_id"))
    status: str
    request: dict[str, Any] | None = Field(
        default=None, validation_alias=AliasChoices("request", "rawRequest")
    )
    task_type: str | None = Field(default=None, validation_alias=AliasChoices("taskType"))


class EngineStatusWire(pydantic.BaseModel):
    """The body of one job's status path (its ``data`` is not read)."""

    model_config = WIRE_CONFIG

    status: str


class EngineListWire(pydantic.BaseModel):
    """The job list body."""

    model_config = WIRE_CONFIG

    result: str | None = None
    jobs: list[EngineJobWire] = Field(default_factory=list)
    # Read as sent: ``count_of`` decides what a hostile value means.
    total_count: object = Field(default=None, validation_alias=AliasChoices("totalCount"))
