"""API kinds: everything jobwatch knows about one API, behind one protocol.

Each API is one module of ``jobwatch._dialects``: its reference dataclass, the
parsing of its bodies and an ``ApiKind`` object it registers at import with
``register``.  Nothing else looks at the type of a reference: the client, the
JSON form of references and the watcher ask ``kind_of(ref)``.

A kind says, for its references:

- ``name``: the ``"api"`` of their JSON form (``"evs"``, ``"ges"``, ``"ges-engine"``);
- ``to_dict`` / ``from_dict``: that JSON form (``ValueError`` on bad data);
- ``graph_key``: the key of the JSON form that names the graph a job lives in
  (``"graph_id"``, ``"graph_name"``); None for an API without graphs;
- ``batch_key``: references with equal keys (not None) on one client are
  answered by one request (engine jobs: their graph's name; GES management
  jobs: their version); None for an API that answers one job per request;
- ``parse``: one answer of the API read into the snapshot of a reference;
- ``fetch``: one job, through a ``Requester`` (the client's retried GET);
- ``fetch_batch``: references sharing one batch key, answered by one (paged)
  request; every reference of the call gets a result, its snapshot or the
  ``JobwatchError`` that ended its query (not in the answer: the kind's
  not-found error).

Adding an API is one module: a frozen dataclass for its references, a kind
(``DirectKind`` does the fetching for an API with a status path per job),
``register(KIND)``; then import it in ``jobwatch._dialects`` and add the
reference to ``JobRef`` (``jobwatch._refs``) and the package's exports.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import quote

from jobwatch._exceptions import JobwatchError

if TYPE_CHECKING:
    from jobwatch._snapshot import JobSnapshot

__all__ = [
    "MAX_ID_LENGTH",
    "ApiKind",
    "BatchResults",
    "DirectKind",
    "Requester",
    "batch_group",
    "kind_named",
    "kind_of",
    "kinds",
    "register",
    "segment",
    "validate_id",
]

MAX_ID_LENGTH = 256
_ID_RE = re.compile(r"[A-Za-z0-9._-]+")
#: What ``quote(value, safe="")`` leaves as it is: every validated ID.
_UNRESERVED_RE = re.compile(r"[A-Za-z0-9._~-]*")


def validate_id(field: str, value: object) -> str:
    """Return ``value`` if it is a safe identifier, else raise ``ValueError`` naming ``field``."""
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{field} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{field} is {len(value)} characters long; at most {MAX_ID_LENGTH}")
    if _ID_RE.fullmatch(value) is None:
        raise ValueError(
            f"{field} {value[:40]!r} may contain only ASCII letters, digits, '-', '_' and '.'"
        )
    if ".." in value:
        raise ValueError(f"{field} {value[:40]!r} must not contain '..'")
    return value


def segment(value: str) -> str:
    """Percent-encode one URL path segment (nothing is left unescaped but unreserved chars)."""
    if _UNRESERVED_RE.fullmatch(value) is not None:
        return value  # nothing to encode (every validated ID): half the cost of quote
    return quote(value, safe="")


R = TypeVar("R", bound=Hashable)

BatchResults = dict[R, "JobSnapshot | JobwatchError"]


class Requester(Protocol):
    """What a kind needs to query its API: the project and a retried GET (``Client``)."""

    @property
    def project_id(self) -> str:
        """The project of every path."""
        ...

    async def get_json(self, path: str, params: Mapping[str, str] | None, *, what: str) -> Any:
        """GET ``path`` (with ``params``) with retries; the parsed JSON of the answer.

        ``what`` names the query in logs and retry reports.  Raises the
        ``JobwatchError`` of a failed answer.
        """
        ...


class ApiKind(Protocol[R]):
    """One API: its references' JSON form, batching, parsing and fetching."""

    @property
    def name(self) -> str:
        """The ``"api"`` of the JSON form; unique among the kinds."""
        ...

    @property
    def ref_type(self) -> type[R]:
        """The class of this API's references."""
        ...

    @property
    def graph_key(self) -> str | None:
        """The key of the JSON form naming the job's graph; None: not in a graph."""
        ...

    def to_dict(self, ref: R) -> dict[str, str]:
        """The JSON form of ``ref``, ``"api"`` included."""
        ...

    def from_dict(self, data: Mapping[str, Any]) -> R:
        """The reference of a JSON form (``"api"`` unchecked); ``ValueError`` on bad data."""
        ...

    def batch_key(self, ref: R) -> Hashable | None:
        """References with equal keys (not None) on one client share one request."""
        ...

    def parse(self, ref: R, data: object) -> JobSnapshot:
        """The snapshot of ``ref`` in ``data``, one answer of its status request."""
        ...

    async def fetch(self, requester: Requester, ref: R) -> JobSnapshot:
        """Query one job (with retries); its snapshot, or the ``JobwatchError`` raised."""
        ...

    async def fetch_batch(self, requester: Requester, refs: Iterable[R]) -> BatchResults[R]:
        """Query ``refs`` (one batch key) with one (paged) request.

        The keys of the answer are exactly ``refs``, fixed when the call starts;
        each value is the snapshot of the job or the ``JobwatchError`` that ended
        its query (the kind's not-found error for a job the answer lacks).
        """
        ...


_by_type: dict[type[Any], ApiKind[Any]] = {}
_by_name: dict[str, ApiKind[Any]] = {}


def register(kind: ApiKind[R]) -> ApiKind[R]:
    """Make ``kind`` the kind of its ``ref_type`` and of its ``name``; returns it."""
    for known, taken in ((_by_type.get(kind.ref_type), "type"), (_by_name.get(kind.name), "name")):
        if known is not None and known is not kind:
            raise ValueError(f"another API kind has the {taken} of {kind.name!r}")
    _by_type[kind.ref_type] = kind
    _by_name[kind.name] = kind
    return kind


def kind_of(ref: R) -> ApiKind[R]:
    """The kind of a reference; ``TypeError`` for anything that is not one."""
    kind = _by_type.get(type(ref))
    if kind is None:
        for cls in type(ref).__mro__[1:]:
            kind = _by_type.get(cls)
            if kind is not None:
                break
        else:
            raise TypeError(f"not a job reference: {ref!r}")
    return kind


def kind_named(name: str) -> ApiKind[Any] | None:
    """The kind whose JSON form has ``"api": name``; None when there is none."""
    return _by_name.get(name)


def kinds() -> tuple[ApiKind[Any], ...]:
    """Every registered kind."""
    return tuple(_by_name.values())


def batch_group(ref: Hashable) -> tuple[str, Hashable] | None:
    """``(kind name, batch key)`` of a reference that shares its request; None otherwise.

    Equal groups on one client are one request; unlike the bare batch key, a
    group never matches a reference of another API.
    """
    kind = kind_of(ref)
    key = kind.batch_key(ref)
    return None if key is None else (kind.name, key)


class _PathRef(Hashable, Protocol):
    def path(self, project_id: str) -> str:
        """The status path of this job under ``project_id``."""
        ...


P = TypeVar("P", bound=_PathRef)


class DirectKind(Generic[P]):
    """The fetching of an API with a status path per job: one GET per job, no batches.

    A subclass sets ``name`` and ``ref_type`` and defines ``to_dict``,
    ``from_dict`` and ``parse``; its references have a ``path(project_id)``.
    An API that names the job in the query rather than the path (RDS:
    ``/v3/{project_id}/jobs?id={job_id}``) overrides ``params``.
    """

    name: str
    ref_type: type[P]
    graph_key: str | None = None

    def parse(self, ref: P, data: object) -> JobSnapshot:
        """The snapshot of ``ref`` in the body of its status path."""
        raise NotImplementedError

    def batch_key(self, ref: P) -> None:
        """None: every job is a request of its own."""
        return None

    def params(self, ref: P) -> Mapping[str, str] | None:
        """The query of the job's status request; None (the default) for none."""
        return None

    async def fetch(self, requester: Requester, ref: P) -> JobSnapshot:
        """GET the job's status path (with its ``params``) and parse it."""
        path = ref.path(requester.project_id)
        data = await requester.get_json(path, self.params(ref), what=str(ref))
        return self.parse(ref, data)

    async def fetch_batch(self, requester: Requester, refs: Iterable[P]) -> BatchResults[P]:
        """One ``fetch`` after the other (these jobs share no request)."""
        results: BatchResults[P] = {}
        for ref in dict.fromkeys(refs):
            try:
                results[ref] = await self.fetch(requester, ref)
            except JobwatchError as exc:
                results[ref] = exc
        return results
