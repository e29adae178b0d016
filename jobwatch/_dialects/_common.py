"""What every API dialect shares: JSON decoding, error bodies, times, states, references."""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import pydantic
import pydantic_core

from jobwatch._exceptions import ResponseValidationError, excerpt, read_error_body, status_error
from jobwatch._kinds import MAX_ID_LENGTH, DirectKind, segment, validate_id
from jobwatch._snapshot import JobState

logger = logging.getLogger("jobwatch")


@dataclass(frozen=True, slots=True)
class OneIdJob:
    """A reference one job ID makes: ``<SERVICE>:<job_id>``, at the path ``PATH`` makes.

    A subclass (one per API) sets ``SERVICE`` (its name, as printed) and ``PATH``, the
    status path with ``{project}`` and ``{job}`` (each quoted as one segment) in it.
    References of two subclasses are never equal, even with the same ``job_id``.
    """

    SERVICE: ClassVar[str] = ""
    PATH: ClassVar[str] = ""

    job_id: str

    def __post_init__(self) -> None:
        validate_id("job_id", self.job_id)

    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        return self.PATH.format(project=segment(project_id), job=segment(self.job_id))

    def __str__(self) -> str:
        return f"{self.SERVICE}:{self.job_id}"


OJ = TypeVar("OJ", bound=OneIdJob)


class OneIdKind(DirectKind[OJ]):
    """The kind of an API of ``OneIdJob`` references: JSON ``{"api", "job_id"}``."""

    def to_dict(self, ref: OJ) -> dict[str, str]:
        """``{"api": <name>, "job_id": ...}``."""
        return {"api": self.name, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> OJ:
        """The reference of ``{"api": <name>, "job_id": ...}``; ``ValueError`` on bad data."""
        return self.ref_type(data.get("job_id"))  # type: ignore[arg-type]  # validated on init


_unknown_seen: set[tuple[str, str]] = set()


def decode_json(body: bytes, *, status_code: int | None = None) -> Any:
    """Parse a JSON body, raising ``ResponseValidationError`` for anything else."""
    try:
        return pydantic_core.from_json(body)
    except ValueError as exc:
        raise ResponseValidationError(
            f"the body is not valid JSON ({exc})", excerpt=excerpt(body), status_code=status_code
        ) from None


JOB_KEYS = frozenset({"status", "Job", "jobs", "job"})
"""Top-level keys of a body that carries a job: ``status`` (EVS, GES, CCE), ``Job``
(GES v1.0 wrapped), ``jobs`` (the engine list), ``job`` (RDS and the other
database services' ``/v3/{project_id}/jobs?id=``)."""


def raise_for_error_body(
    data: object, *, body: bytes, request_id: str | None, url: str | None = None
) -> None:
    """Raise the ``APIStatusError`` an HTTP 200 answer carries, if it carries one.

    ``{"error": {...}}`` is an error whatever the status code; so is an engine
    list with ``result: failed``, and a body with an error code and no job in it
    (``JOB_KEYS``: a job's own status, or the object that holds the job).
    ``url`` is the URL asked for (its path is named in the message of an unknown API).
    """
    if type(data) is dict and "status" in data and "error" not in data and "result" not in data:
        return  # a job's own body (the common answer): none of the three tests below holds
    if not isinstance(data, Mapping):
        return
    is_error = (
        isinstance(data.get("error"), Mapping)
        or data.get("result") == "failed"
        or not (JOB_KEYS & data.keys())
    )
    if is_error and read_error_body(data) is not None:
        path = urlsplit(url).path if url else None
        raise status_error(200, data, body=body, request_id=request_id, path=path)


def require_object(data: object, what: str) -> Mapping[str, Any]:
    """Return ``data`` if it is a JSON object, else raise ``ResponseValidationError``."""
    if not isinstance(data, Mapping):
        raise ResponseValidationError(
            f"{what} must be a JSON object, not {json_type(data)}", excerpt=excerpt(repr(data))
        )
    return data


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(value), "object"
    )


class WireModel:
    """A wire model that its module defines, imported at its first use.

    Defining pydantic models imports most of pydantic and builds a validator for
    each, a quarter of a second for every dialect's models together: a dialect
    names its models with ``WireModel`` (their real classes for type checkers), so
    that importing the dialects (their references and kinds) costs none of that
    and the first validation of a model pays for its module's models only.
    ``jobwatch.sim`` imports every model module when it is imported.
    """

    __slots__ = ("_model", "module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self._model: type[pydantic.BaseModel] | None = None

    def resolve(self) -> type[pydantic.BaseModel]:
        """The model class (its module is imported the first time)."""
        model = self._model
        if model is None:
            model = self._model = getattr(importlib.import_module(self.module), self.name)
        return model

    def __call__(self, **fields: Any) -> pydantic.BaseModel:
        """An instance of the model, as the class makes it."""
        return self.resolve()(**fields)

    def __repr__(self) -> str:
        return f"WireModel({self.module!r}, {self.name!r})"


def validate(
    model: type[pydantic.BaseModel] | WireModel, data: Mapping[str, Any], what: str
) -> Any:
    """Validate ``data`` against a wire model, raising ``ResponseValidationError`` on misfit."""
    if isinstance(model, WireModel):
        model = model.resolve()
    try:
        # ``model_validate`` with its defaults, without its Python frame.
        return model.__pydantic_validator__.validate_python(data)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<body>'}: {err['msg']}"
            for err in exc.errors()[:3]
        )
        raise ResponseValidationError(
            f"{what} does not fit the API: {problems}", excerpt=excerpt(repr(dict(data)))
        ) from None


def parse_time(value: str | None, field: str) -> datetime | None:
    """Parse an API time (``2018-11-27T21:39:00`` or ``2016-03-08T07:40:13.219Z``) as UTC.

    Times without a zone are UTC (the APIs say so).  ``""`` and None give None.
    """
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ResponseValidationError(
            f"{field} is not a time: {value[:40]!r}", excerpt=value[:80]
        ) from None
    zone = parsed.tzinfo
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    if zone is UTC:  # "...Z": already what astimezone would give
        return parsed
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # (e.g. 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC)
        raise ResponseValidationError(
            f"{field} is out of range in UTC: {value[:40]!r}", excerpt=value[:80]
        ) from None


def map_state(api: str, raw: str | None, table: Mapping[str, JobState]) -> JobState:
    """Map a raw status through ``table`` (lowercase keys, matched case-insensitively).

    Anything else is ``unknown``: not terminal, logged once per API and status.
    """
    if raw is None:
        return JobState.UNKNOWN
    state = table.get(raw.lower(), JobState.UNKNOWN)
    if state is JobState.UNKNOWN and (api, raw) not in _unknown_seen:
        if len(_unknown_seen) < 1024:
            _unknown_seen.add((api, raw))
        logger.warning("unrecognised %s job status %r: treated as 'unknown'", api, raw[:64])
    return state


def place_id(parent_id: str, field: str, n: int) -> str:
    """The ID of sub-job ``n`` of ``parent_id`` listed without one: its place.

    ``"<parent id>.<field>.<n>"``, an ID no API answers on; a parent ID too long
    for the suffix, or ending in ``.`` (which would make ``..``), is replaced by
    its SHA-256, so the whole stays a valid ID.
    """
    suffix = f".{field}.{n}"
    head = parent_id
    if len(head) + len(suffix) > MAX_ID_LENGTH or head.endswith("."):
        head = hashlib.sha256(head.encode()).hexdigest()
    return head + suffix


def text(value: object) -> str | None:
    """A string field: empty strings and nulls are None; lists are joined with ','."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or None
    return str(value)


#: Every wire model's configuration.  (Not ``defer_build``: a module of models is
#: imported at the first validation of one of them, its validators built then.)
WIRE_CONFIG: pydantic.ConfigDict = {"extra": "ignore", "frozen": True, "strict": False}
