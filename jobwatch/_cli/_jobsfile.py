"""``jobwatch watch --jobs FILE``: mixed jobs, one JSON object per line.

Each line names one job and where it lives::

    {"api": "ecs", "job_id": "ff80...", "region": "cn-north-4"}
    {"api": "ges-engine", "graph": "movies", "job_id": "7", "endpoint": "https://10.0.0.5"}
    {"api": "evs", "job_id": "ff81...", "project_id": "0f2c..."}

``api``, ``region``, ``endpoint`` and ``project_id`` may be left out when the
command line gives them (``--api``, ``--region``, ``--endpoint``,
``--project-id``); a line's own value wins.  ``endpoint`` wins over ``region``
on the same level.  Blank lines are skipped.  Every line is checked before any
request: a bad one is a usage error naming its line number.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobwatch._apis import ApiWord, api_words
from jobwatch._cli._errors import CliError
from jobwatch._client import check_endpoint
from jobwatch._kinds import validate_id
from jobwatch._refs import JobRef

__all__ = ["MAX_LINE", "Defaults", "JobLine", "Place", "read_jobs"]

_WHERE = ("region", "endpoint", "project_id")
_KEYS = frozenset({"api", "job_id", "graph", *_WHERE})
MAX_LINE = 64 * 1024  # a job's line is a few hundred bytes; a megabyte line is a mistake


@dataclass(frozen=True, slots=True)
class Place:
    """Where a job's requests go: the endpoint and the project."""

    endpoint: str
    project_id: str


@dataclass(frozen=True, slots=True)
class Defaults:
    """What the command line gives the lines that leave it out."""

    api: str | None = None
    region: str | None = None
    endpoint: str | None = None
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobLine:
    """One job of the file, where it lives, and the line it came from."""

    ref: JobRef
    place: Place
    line: int


Locate = Callable[[str, str], str]
"""``(api word, region) -> endpoint``; ``ValueError`` for an unknown service or region."""


def read_jobs(
    lines: Iterable[str], source: str, defaults: Defaults, locate: Locate
) -> list[JobLine]:
    """The jobs of ``lines`` (a file's or standard input's), in order, without repeats.

    ``CliError`` (usage, exit 2) naming ``source`` and the line for the first bad
    line; a job named twice with two places is one too.
    """
    words = api_words()
    jobs: dict[JobRef, JobLine] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            job = _read_line(text, number, words, defaults, locate)
        except ValueError as exc:
            raise CliError(f"{source}:{number}: {exc}") from None
        known = jobs.get(job.ref)
        if known is None:
            jobs[job.ref] = job
        elif known.place != job.place:
            raise CliError(
                f"{source}:{number}: job {job.ref} is on line {known.line} with another "
                f"endpoint or project ({known.place.endpoint}, {known.place.project_id})"
            )
    if not jobs:
        raise CliError(f"{source}: no jobs (one JSON object per line)")
    return list(jobs.values())


def _read_line(
    text: str, number: int, words: Mapping[str, ApiWord], defaults: Defaults, locate: Locate
) -> JobLine:
    if len(text) > MAX_LINE:
        raise ValueError(f"the line is {len(text)} characters long; at most {MAX_LINE}")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("each line must be a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ValueError(f"{key!r} must be a string, not {type(value).__name__}")
    api = data.get("api", defaults.api)
    if api is None:
        raise ValueError('no "api" (or pass --api for the lines without one)')
    word = words.get(api)
    if word is None:
        raise ValueError(f"unknown api {api[:30]!r} (known: {', '.join(words)})")
    if "job_id" not in data:
        raise ValueError('no "job_id"')
    graph = data.get("graph")
    if word.graph_key is None and graph is not None:
        raise ValueError(f'"graph" is not used with api {api}')
    if word.graph_key is not None and graph is None:
        raise ValueError(f'api {api} needs "graph" (the {word.graph_label})')
    ref = word.ref(data["job_id"], graph)  # ValueError names the field
    return JobLine(ref, _place(data, api, defaults, locate), number)


def _place(data: Mapping[str, Any], api: str, defaults: Defaults, locate: Locate) -> Place:
    """The line's own endpoint or region, else the command line's (endpoint first)."""
    endpoint: str | None = data.get("endpoint")
    region: str | None = data.get("region")
    if endpoint is None and region is None:
        endpoint, region = defaults.endpoint, defaults.region
    if endpoint is not None:
        check_endpoint(endpoint)  # ValueError says what is wrong
    elif region is not None:
        endpoint = locate(api, region)
    else:
        raise ValueError('no "endpoint" or "region" (or pass --endpoint or --region)')
    project_id = data.get("project_id", defaults.project_id)
    if project_id is None:
        raise ValueError('no "project_id" (or pass --project-id)')
    return Place(endpoint.rstrip("/"), validate_id("project_id", project_id))
