"""Fuzzing: every parser answers a snapshot or one of our typed errors, never anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwatch import (
    APIStatusError,
    Client,
    EvsJob,
    GesEngineJob,
    GesJob,
    JobSnapshot,
    JobwatchError,
    ResponseTooLarge,
    RetryPolicy,
)
from jobwatch._dialects import decode_json, parse_engine_page, parse_snapshot, raise_for_error_body
from jobwatch._exceptions import read_error_body, status_error, throttle_window

SETTINGS = settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=30,
)

FIELDS = [
    "status", "job_id", "jobId", "job_type", "jobType", "job_name", "jobName", "begin_time",
    "beginTime", "end_time", "endTime", "entities", "sub_jobs", "fail_reason", "error_code",
    "job_detail", "jobDetail", "schemaPath", "edgeset_path", "path", "total_lines", "failedLines",
    "job_progress", "Job", "jobs", "request", "rawRequest", "totalCount", "result", "error",
    "errorCode", "error_msg", "code", "message",
]  # fmt: skip

# Bodies shaped like the APIs', with any value in any field, at any depth.
shaped = st.recursive(
    st.none()
    | st.text(max_size=12)
    | st.integers()
    | st.sampled_from(["SUCCESS", "running", "-1"]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=8)
    ),
    max_leaves=40,
)

REFS: list[EvsJob | GesJob] = [EvsJob("j"), GesJob("g", "j", "v1.0"), GesJob("g", "j", "v2")]


def parse_everything(data: Any, body: bytes = b"{}") -> None:
    """Run every parser over ``data``; only snapshots and JobwatchErrors may come out."""
    for ref in REFS:
        try:
            snapshot = parse_snapshot(ref, data)
        except JobwatchError:
            continue
        assert isinstance(snapshot, JobSnapshot)
        list(snapshot.walk())
    try:
        page = parse_engine_page("g", data)
        assert all(isinstance(s, JobSnapshot) for s in page.jobs)
    except JobwatchError:
        pass
    with contextlib.suppress(APIStatusError):
        raise_for_error_body(data, body=body, request_id=None)
    read_error_body(data)
    for status in (200, 400, 404, 429, 503):
        assert isinstance(status_error(status, data, body=body), APIStatusError)


@SETTINGS
@given(json_values)
def test_arbitrary_json_values(data: Any) -> None:
    parse_everything(data, json.dumps(data).encode())


@SETTINGS
@given(shaped)
def test_api_shaped_bodies_with_wrong_types_everywhere(data: Any) -> None:
    parse_everything(data, json.dumps(data).encode())


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes(body: bytes) -> None:
    try:
        data = decode_json(body)
    except JobwatchError:
        return
    parse_everything(data, body)


@SETTINGS
@given(st.text(max_size=200))
def test_throttle_messages(message: str) -> None:
    window = throttle_window(message)
    if window is not None:
        assert window[0] >= 0
        assert window[1] >= 0


@pytest.mark.parametrize("depth", [100, 1_000, 10_000])
def test_hostile_nesting(depth: int) -> None:
    text = '{"status":"SUCCESS","job_id":"a","entities":{"sub_jobs":[' * depth
    text += '{"status":"SUCCESS","job_id":"z"}' + "]}}" * depth
    with pytest.raises(JobwatchError):
        parse_snapshot(EvsJob("a"), decode_json(text.encode()))
    arrays = b"[" * depth + b"]" * depth
    try:
        data = decode_json(arrays)
    except JobwatchError:
        assert depth > 200  # the JSON parser's own nesting limit
    else:
        parse_everything(data)  # every parser refuses it with a typed error


@pytest.mark.anyio
async def test_a_30_mb_body_is_refused_through_the_client() -> None:
    huge = b'{"status": "SUCCESS", "padding": "' + b"x" * (30 * 2**20) + b'"}'

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=huge)

    async with Client(
        "http://x.test",
        "p",
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
    ) as client:
        with anyio.fail_after(10), pytest.raises(ResponseTooLarge):
            await client.fetch(EvsJob("j"))
        for ref in (GesJob("g", "j"), GesEngineJob("g", "j")):
            with pytest.raises(ResponseTooLarge):
                await client.fetch(ref)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [b"[]", b'["status"]', b"null", b"42", b'"SUCCESS"', b'{"status": null}', b'{"jobs": 5}'],
)
async def test_wrong_top_level_types_through_the_client(body: bytes) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    async with Client("http://x.test", "p", transport=httpx.MockTransport(handler)) as client:
        for ref in (EvsJob("j"), GesJob("g", "j"), GesEngineJob("g", "j")):
            with pytest.raises(JobwatchError):
                await client.fetch(ref)
