"""A review of issue 13's dialects, as a hostile server would test them.

Every kind's parser, given bodies shaped like its API's with hostile values in
them (times out of range, IDs that cannot be joined, sub-jobs without IDs, any
JSON), answers a snapshot or one of our typed errors, never anything else.
Endpoints that carry a secret are refused without the secret in the message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import (
    CceJob,
    DcsJob,
    GesEngineJob,
    GesJob,
    JobSnapshot,
    JobwatchError,
    RdsJob,
    ResponseValidationError,
)
from jobwatch._client import check_endpoint
from jobwatch._dialects._common import place_id
from jobwatch._kinds import MAX_ID_LENGTH, kind_of, kinds, validate_id
from jobwatch._refs import JobRef

SETTINGS = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


def refs_of(job_id: str) -> list[JobRef]:
    """One reference of every registered kind, with ``job_id``."""
    made: list[JobRef] = []
    for kind in (k for k in kinds() if not k.name.startswith("test-")):  # (test_kinds adds one)
        data: dict[str, str] = {"api": kind.name, "job_id": job_id}
        if kind.name == "ges":
            data["graph_id"] = "g"
        if kind.name == "ges-engine":
            data["graph_name"] = "g"
        made.append(kind.from_dict(data))
    return made


def parse(ref: JobRef, body: object) -> JobSnapshot:
    return kind_of(ref).parse(ref, body)


def typed_or_snapshot(ref: JobRef, body: object) -> JobSnapshot | None:
    try:
        return parse(ref, body)
    except JobwatchError:
        return None  # ours: fine (anything else escapes and fails the test)


# -- times out of range: once an OverflowError escaped every dialect ----------------------------

#: Offsets that push a time past year 9999 or before year 1 in UTC.
OUT_OF_RANGE = ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"]


def bodies_with_time(when: str) -> dict[str, Callable[[], object]]:
    """A body of each dialect with ``when`` as its start time."""
    family = {"status": "RUNNING", "job_id": "a", "begin_time": when}
    return {
        "family": lambda: family,
        "cce": lambda: {"status": {"phase": "Running"}, "metadata": {"creationTimestamp": when}},
        "cce-go": lambda: {
            "status": {"phase": "Success"},
            "metadata": {"updateTimestamp": when.replace("T", " ").replace("-23:59", " -2359 UTC")},
        },
        "rds": lambda: {"job": {"status": "Running", "created": when}},
        "ges": lambda: {"status": "running", "begin_time": when},
    }


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_a_time_out_of_range_in_utc_is_our_error(when: str) -> None:
    bodies = bodies_with_time(when)
    checked = 0
    for ref in refs_of("a"):
        kind = kind_of(ref).name
        body = (
            bodies["cce"]()
            if kind == "cce"
            else bodies["rds"]()
            if kind == "rds"
            else bodies["ges"]()
            if kind == "ges"
            else None
            if kind in ("ges-engine", "dcs")  # (no time read; DCS sends milliseconds)
            else bodies["family"]()
        )
        if body is None:
            continue
        with pytest.raises(ResponseValidationError, match="out of range"):
            parse(ref, body)
        checked += 1
    assert checked >= 11  # the family's ten kinds, CCE, RDS, GES
    if when.startswith("9999"):
        with pytest.raises(ResponseValidationError, match="out of range"):
            parse(CceJob("a"), bodies["cce-go"]())


@pytest.mark.parametrize("millis", ["999999999999999", "253402300800000"])
def test_dcs_milliseconds_past_the_year_9999_are_our_error(millis: str) -> None:
    with pytest.raises(ResponseValidationError, match="out of range"):
        parse(DcsJob("a"), {"status": "RUNNING", "begin_time": millis})
    # The last millisecond of 9999 still reads.
    last = parse(DcsJob("a"), {"status": "RUNNING", "begin_time": "253402300799999"})
    assert last.begin_time is not None
    assert last.begin_time.year == 9999


# -- sub-jobs without IDs under parents whose IDs cannot simply take a suffix ---------------------

AWKWARD_PARENTS = ["a.", "a" * MAX_ID_LENGTH, "a" * (MAX_ID_LENGTH - 5) + ".", "x-_.y"]


def with_anonymous_sub_jobs(ref: JobRef) -> object | None:
    """A body of ``ref``'s dialect with two sub-jobs that name no job (None: no sub-jobs)."""
    name = kind_of(ref).name
    if name == "cce":
        sub: dict[str, Any] = {"status": {"phase": "Running"}}
        return {"status": {"phase": "Running"}, "spec": {"subJobs": [sub, {"metadata": {}, **sub}]}}
    if name in ("rds", "ges", "ges-engine"):
        return None
    key = "sub_jobs_result" if name.startswith("ims") else "sub_jobs"
    subs = [{"status": "INIT"}, {"status": "RUNNING", "job_id": ""}]
    return {"status": "RUNNING", "job_id": "p", "entities": {key: subs}}


@pytest.mark.parametrize("parent", AWKWARD_PARENTS)
def test_placeholder_ids_are_valid_and_distinct_under_any_parent(parent: str) -> None:
    checked = 0
    for ref in refs_of(parent):
        body = with_anonymous_sub_jobs(ref)
        if body is None:
            continue
        snapshot = parse(ref, body)
        ids = [sub.ref.job_id for sub in snapshot.sub_jobs]
        assert len(set(ids)) == 2, (ref, ids)
        for job_id in ids:
            validate_id("job_id", job_id)
            assert type(snapshot.sub_jobs[0].ref) is type(ref)  # a sub-job is of its service
        checked += 1
    assert checked == 11  # the family's ten kinds and CCE


@SETTINGS
@given(
    parent=st.from_regex(r"[A-Za-z0-9_.\-]{1,255}", fullmatch=True).filter(lambda s: ".." not in s),
    field=st.sampled_from(["sub_jobs", "subJobs"]),
    n=st.integers(0, 10**6),
)
def test_place_id_is_always_a_valid_id(parent: str, field: str, n: int) -> None:
    assert validate_id("job_id", place_id(parent, field, n))


# -- any body of a dialect's shape: a snapshot or our error ----------------------------------------

#: Words and values the APIs send, and values that broke a parser once.
WORDS = [
            "",
            "a.",
            "..",
            "RUNNING",
            "SUCCESS",
            "FAIL",
            "INIT",
            "Running",
            "Success",
            "Failed",
            "Completed",
            "Pending",
            "Initializing",
            "running",
            "complete",
            "60%",
            "999%",
            "-1",
            "2020-02-02 08:12:40.672772389 +0000 UTC",
            "9999-12-31 23:59:59 -2359 UTC",
            "2018-08-06T10:41:14+0000",
            "9999-12-31T23:59:59-23:59",
            "0001-01-01T00:00:00+23:59",
            "999999999999999",
            "1684191545379",
            "a" * 300,
        ]  # fmt: skip
leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS)
    | st.text(max_size=12)
)
KEYS = [
    "status", "job_id", "job_type", "begin_time", "end_time", "error_code", "fail_reason",
    "entities", "sub_jobs", "sub_jobs_result", "process_percent", "errorcode_message",
    "metadata", "uid", "creationTimestamp", "updateTimestamp", "spec", "subJobs", "type",
    "phase", "reason", "job", "name", "created", "ended", "process", "id", "jobs", "jobId",
    "Job", "jobStatus", "totalCount", "error", "error_msg", "errorCode",
]  # fmt: skip
shaped = st.recursive(
    leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=7)
    ),
    max_leaves=40,
)


@SETTINGS
@given(body=shaped, job_id=st.sampled_from(["a", "a.", "a" * MAX_ID_LENGTH]))
def test_any_body_of_any_dialect_is_a_snapshot_or_our_error(body: object, job_id: str) -> None:
    for ref in refs_of(job_id):
        typed_or_snapshot(ref, body)


def family_job(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    sub = st.deferred(lambda: family_job(depth + 1)) if depth < 3 else st.just({"status": "INIT"})
    return st.fixed_dictionaries(
        {"status": leaf},
        optional={
            "job_id": leaf,
            "begin_time": leaf,
            "end_time": leaf,
            "entities": st.fixed_dictionaries(
                {}, optional={"sub_jobs": st.lists(sub, max_size=3), "process_percent": leaf}
            ),
        },
    )


@SETTINGS
@given(body=family_job(0), job_id=st.sampled_from(["a", "a.", "a" * MAX_ID_LENGTH]))
def test_nested_family_bodies_with_hostile_fields(body: dict[str, Any], job_id: str) -> None:
    for ref in refs_of(job_id):
        snapshot = typed_or_snapshot(ref, body)
        if snapshot is not None:
            for sub in snapshot.sub_jobs:
                validate_id("job_id", sub.ref.job_id)


def cce_job(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    sub = st.deferred(lambda: cce_job(depth + 1)) if depth < 3 else st.just({})
    return st.fixed_dictionaries(
        {"status": st.fixed_dictionaries({"phase": leaf}, optional={"reason": leaf})},
        optional={
            "metadata": st.fixed_dictionaries(
                {}, optional={"uid": leaf, "creationTimestamp": leaf, "updateTimestamp": leaf}
            ),
            "spec": st.fixed_dictionaries(
                {}, optional={"type": leaf, "subJobs": st.lists(sub, max_size=3)}
            ),
        },
    )


@SETTINGS
@given(body=cce_job(0), job_id=st.sampled_from(["a", "a.", "a" * MAX_ID_LENGTH]))
def test_nested_cce_bodies_with_hostile_fields(body: dict[str, Any], job_id: str) -> None:
    typed_or_snapshot(CceJob(job_id), body)


@SETTINGS
@given(
    job=st.fixed_dictionaries(
        {"status": leaf},
        optional={"created": leaf, "ended": leaf, "process": leaf, "entities": shaped},
    )
)
def test_rds_bodies_with_hostile_fields(job: dict[str, Any]) -> None:
    snapshot = typed_or_snapshot(RdsJob("a"), {"job": job})
    if snapshot is not None and snapshot.progress is not None:
        assert snapshot.progress >= 0


def test_the_kinds_cover_every_service_of_the_issue() -> None:
    names = {kind.name for kind in kinds()}
    assert {"evs", "ecs", "bms", "vpc", "ims", "ims-cloudimages", "deh", "sdrs", "evs-v2"} <= names
    assert {"dcs", "cce", "rds", "ges", "ges-engine"} <= names
    assert {type(ref) for ref in refs_of("a")} >= {CceJob, RdsJob, GesJob, GesEngineJob, DcsJob}


# -- endpoints that carry a secret -------------------------------------------------------------

SECRET = "S3cr3tT0ken"


@pytest.mark.parametrize(
    "endpoint",
    [
        f"https://ak:{SECRET}@evs.example",
        f"https://{SECRET}@evs.example",
        f"ftp://ak:{SECRET}@evs.example",  # once echoed: the scheme was checked first
        f"https://ak:{SECRET}@",  # (no host)
        f"//ak:{SECRET}@evs.example",  # (no scheme)
        f"ak:{SECRET}@evs.example",  # (https:// left out)
        f"https://ak:{SECRET}@evs.example/v1",
    ],
)
def test_an_endpoint_with_a_secret_is_refused_without_showing_it(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint") as caught:
        check_endpoint(endpoint)
    assert SECRET not in str(caught.value)


@SETTINGS
@given(
    scheme=st.sampled_from(["https://", "http://", "ftp://", "//", "", "mailto:"]),
    user=st.text(st.characters(codec="ascii", exclude_characters="@/?#"), max_size=8),
    host=st.sampled_from(["evs.example", "", "h:1", "[::1]", "h:x"]),
    tail=st.sampled_from(["", "/", "/v1", "/gw", "?q=1"]),
)
def test_no_refusal_of_an_endpoint_shows_its_userinfo(
    scheme: str, user: str, host: str, tail: str
) -> None:
    endpoint = f"{scheme}{user}:{SECRET}@{host}{tail}"
    with pytest.raises(ValueError, match="endpoint") as caught:
        check_endpoint(endpoint)
    assert SECRET not in str(caught.value)
