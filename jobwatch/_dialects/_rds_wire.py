"""The wire models of RDS jobs (imported at their first use: ``WireModel``)."""

from __future__ import annotations

from typing import Any

import pydantic

from jobwatch._dialects._common import WIRE_CONFIG

__all__ = ["RdsBodyWire", "RdsJobWire"]


class RdsJobWire(pydantic.BaseModel):
    """The wire form of the ``job`` of an RDS answer."""

    model_config = WIRE_CONFIG

    status: str
    name: str | None = None
    created: str | None = None
    ended: str | None = None
    process: str | None = None
    entities: dict[str, Any] | None = None
    fail_reason: str | None = None


class RdsBodyWire(pydantic.BaseModel):
    """The wire form of an RDS answer: the job, wrapped."""

    model_config = WIRE_CONFIG

    job: dict[str, Any]
