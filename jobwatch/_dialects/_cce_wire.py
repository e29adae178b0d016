"""The wire models of CCE jobs (imported at their first use: ``WireModel``)."""

from __future__ import annotations

from typing import Any

import pydantic

from jobwatch._dialects._common import WIRE_CONFIG

__all__ = ["CceJobWire", "CceMetadataWire", "CceSpecWire", "CceStatusWire"]


class CceMetadataWire(pydantic.BaseModel):
    """``metadata`` of a CCE job."""

    model_config = WIRE_CONFIG

    uid: str | None = None
    creation_timestamp: str | None = pydantic.Field(None, alias="creationTimestamp")
    update_timestamp: str | None = pydantic.Field(None, alias="updateTimestamp")


class CceSpecWire(pydantic.BaseModel):
    """``spec`` of a CCE job (``subJobs`` read one by one, as jobs)."""

    model_config = WIRE_CONFIG

    type: str | None = None
    sub_jobs: list[Any] | None = pydantic.Field(None, alias="subJobs")


class CceStatusWire(pydantic.BaseModel):
    """``status`` of a CCE job."""

    model_config = WIRE_CONFIG

    phase: str | None = None
    reason: str | None = None


class CceJobWire(pydantic.BaseModel):
    """The wire form of a CCE job (and of each of its sub-jobs)."""

    model_config = WIRE_CONFIG

    metadata: CceMetadataWire | None = None
    spec: CceSpecWire | None = None
    status: CceStatusWire | None = None
