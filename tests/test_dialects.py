"""Every seed sample body parses to the snapshot its page describes; odd bodies fail typed."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobwatch import (
    EvsJob,
    GesEngineJob,
    GesJob,
    JobNotFound,
    JobState,
    ResponseValidationError,
)
from jobwatch._dialects import (
    _common,
    _evs,
    decode_json,
    parse_engine_page,
    parse_snapshot,
    raise_for_error_body,
)
from jobwatch._exceptions import APIStatusError, status_error

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / f"{name}.json").read_bytes()


def parsed(name: str) -> Any:
    return decode_json(sample(name))


# -- EVS ---------------------------------------------------------------------


def test_evs_running_sample() -> None:
    ref = EvsJob("4010a32d535527910153552b492c0002")
    snap = parse_snapshot(ref, parsed("evs_running"))
    assert snap.ref == ref
    assert snap.state is JobState.RUNNING
    assert snap.raw_status == "RUNNING"
    assert snap.job_type == "createVolume"
    assert snap.begin_time == datetime(2016, 3, 8, 7, 40, 13, 219000, tzinfo=UTC)
    assert snap.end_time is None  # "" while running
    assert snap.error_code is None
    assert snap.fail_reason is None
    assert snap.entities == {"volume_id": "bdf1bb37-f20f-4266-9a04-f43e0a127376"}
    assert snap.sub_jobs == ()
    assert snap.raw == json.loads(sample("evs_running"))
    assert not snap.terminal


def test_evs_batch_sample_has_sub_jobs() -> None:
    ref = EvsJob("21917a8d52a19b040152a9f2f1eb003e")
    snap = parse_snapshot(ref, parsed("evs_batch_success"))
    assert snap.state is JobState.SUCCEEDED
    assert snap.job_type == "batchCreateVolume"
    assert snap.end_time == datetime(2016, 2, 4, 1, 44, 8, 283000, tzinfo=UTC)
    assert [s.ref for s in snap.sub_jobs] == [
        EvsJob("21917a8d52a19b040152a9f2f2e50041"),
        EvsJob("21917a8d52a19b040152a9f2f2f60042"),
    ]
    first = snap.sub_jobs[0]
    assert first.state is JobState.SUCCEEDED
    assert first.entities == {"volume_id": "0b549095-4937-4849-8e4c-52aa027d64f7"}
    assert first.begin_time == datetime(2016, 2, 4, 1, 43, 37, 445000, tzinfo=UTC)
    assert snap.failed_sub_jobs == ()
    assert [s.ref.job_id for s in snap.walk()] == [
        "21917a8d52a19b040152a9f2f1eb003e",
        "21917a8d52a19b040152a9f2f2e50041",
        "21917a8d52a19b040152a9f2f2f60042",
    ]


def test_evs_error_sample_is_an_error_even_with_200() -> None:
    body = sample("evs_error")
    with pytest.raises(APIStatusError) as info:
        raise_for_error_body(decode_json(body), body=body, request_id="req-1")
    assert info.value.status_code == 200
    assert info.value.error_code == "XXX"
    assert info.value.message == "XXXX"
    assert info.value.request_id == "req-1"


def evs_body(status: str, job_id: str = "job-1", subs: list[Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": status,
        "job_id": job_id,
        "job_type": "batchCreateVolume",
        "begin_time": "2016-02-04T01:43:37.193Z",
        "end_time": "",
        "error_code": None,
        "fail_reason": None,
        "entities": {"sub_jobs": subs} if subs is not None else {},
    }
    return body


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("INIT", JobState.PENDING),
        ("WAITING_EXECUTE", JobState.PENDING),
        ("PENDING_PAYMENT", JobState.PENDING),
        ("RUNNING", JobState.RUNNING),
        ("LISTENING", JobState.RUNNING),
        ("SUCCESS", JobState.SUCCEEDED),
        ("FAIL", JobState.FAILED),
        ("success", JobState.SUCCEEDED),
        ("ROLLING_BACK", JobState.UNKNOWN),
    ],
)
def test_evs_status_mapping(raw: str, state: JobState) -> None:
    snap = parse_snapshot(EvsJob("j"), evs_body(raw))
    assert snap.state is state
    assert snap.raw_status == raw


def test_unknown_status_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    _common._unknown_seen.discard(("evs", "MYSTERY_STATE"))
    with caplog.at_level(logging.WARNING, logger="jobwatch"):
        for _ in range(3):
            snap = parse_snapshot(EvsJob("j"), evs_body("MYSTERY_STATE"))
            assert snap.state is JobState.UNKNOWN
            assert not snap.terminal
    hits = [r for r in caplog.records if "MYSTERY_STATE" in r.getMessage()]
    assert len(hits) == 1


def test_evs_nested_sub_jobs_and_failures() -> None:
    leaf_fail = evs_body("FAIL", "leaf-2") | {"fail_reason": "quota", "error_code": "EVS.2024"}
    middle = evs_body("SUCCESS", "mid", [evs_body("SUCCESS", "leaf-1"), leaf_fail])
    top = evs_body("SUCCESS", "top", [middle])
    snap = parse_snapshot(EvsJob("top"), top)
    assert snap.state is JobState.SUCCEEDED
    (mid,) = snap.sub_jobs
    assert [s.ref.job_id for s in mid.sub_jobs] == ["leaf-1", "leaf-2"]
    failed = snap.failed_sub_jobs
    assert [s.ref.job_id for s in failed] == ["leaf-2"]
    assert failed[0].fail_reason == "quota"
    assert failed[0].error_code == "EVS.2024"


def test_evs_sub_job_depth_is_capped_with_a_typed_error() -> None:
    body = evs_body("SUCCESS", "leaf")
    for i in range(_evs.MAX_SUB_JOB_DEPTH + 1):
        body = evs_body("SUCCESS", f"level-{i}", [body])
    with pytest.raises(ResponseValidationError, match="nested deeper"):
        parse_snapshot(EvsJob("top"), body)


def test_evs_hostile_depth_in_raw_json_is_a_typed_error() -> None:
    depth = 10_000
    text = '{"status":"SUCCESS","job_id":"a","entities":{"sub_jobs":[' * depth
    text += '{"status":"SUCCESS","job_id":"z"}' + "]}}" * depth
    with pytest.raises(ResponseValidationError):
        parse_snapshot(EvsJob("a"), decode_json(text.encode()))


@pytest.mark.parametrize(
    ("raw", "awaiting"),
    [("PENDING_PAYMENT", True), ("pending_payment", True), ("INIT", False), ("SUCCESS", False)],
)
def test_evs_pending_payment_is_pending_and_awaiting_payment(raw: str, awaiting: bool) -> None:
    snap = parse_snapshot(EvsJob("j"), evs_body(raw))
    assert snap.awaiting_payment is awaiting
    if awaiting:
        assert snap.state is JobState.PENDING
        assert not snap.terminal


def test_evs_sub_jobs_without_id_or_status_are_kept_by_their_place() -> None:
    subs = [
        {"job_id": None, "status": "FAIL", "fail_reason": "no capacity"},
        {"status": "SUCCESS"},  # no job_id at all
        {"job_id": "", "status": "RUNNING"},
        {"job_id": "named"},  # no status
        {},  # nothing at all
        {"job_id": None, "status": "RUNNING", "entities": {"sub_jobs": [{"status": "INIT"}]}},
    ]
    snap = parse_snapshot(EvsJob("batch"), evs_body("RUNNING", "batch", subs))
    assert [s.ref.job_id for s in snap.sub_jobs] == [
        "batch.sub_jobs.0",
        "batch.sub_jobs.1",
        "batch.sub_jobs.2",
        "named",
        "batch.sub_jobs.4",
        "batch.sub_jobs.5",
    ]
    assert [s.state for s in snap.sub_jobs] == [
        JobState.FAILED,
        JobState.SUCCEEDED,
        JobState.RUNNING,
        JobState.UNKNOWN,
        JobState.UNKNOWN,
        JobState.RUNNING,
    ]
    assert snap.sub_jobs[3].raw_status is None
    assert snap.sub_jobs[0].fail_reason == "no capacity"
    assert snap.failed_sub_jobs == (snap.sub_jobs[0],)
    (grandchild,) = snap.sub_jobs[5].sub_jobs
    assert grandchild.ref == EvsJob("batch.sub_jobs.5.sub_jobs.0")
    assert grandchild.state is JobState.PENDING
    assert snap.sub_jobs[4].raw == {}


def test_evs_sub_job_place_names_stay_valid_ids_under_a_long_parent_id() -> None:
    parent = "p" * 256
    snap = parse_snapshot(EvsJob(parent), evs_body("RUNNING", parent, [{"status": "INIT"}] * 2))
    first, second = (s.ref.job_id for s in snap.sub_jobs)
    assert first.endswith(".sub_jobs.0")
    assert second.endswith(".sub_jobs.1")
    assert first.removesuffix(".sub_jobs.0") == second.removesuffix(".sub_jobs.1")
    assert len(first) <= 256


def test_evs_top_level_job_still_needs_a_status() -> None:
    with pytest.raises(ResponseValidationError, match="status"):
        parse_snapshot(EvsJob("j"), {"job_id": "j", "entities": {}})


def test_ecs_sub_job_errorcode_message_becomes_fail_reason() -> None:
    # ECS API page ecs_02_0901: a sub-job's failure reason may sit in its
    # entities.errorcode_message (with server_id / nic_id beside it).
    ecs_sub = {
        "status": "FAIL",
        "job_id": "sub-1",
        "job_type": "createSingleServer",
        "error_code": None,
        "fail_reason": None,
        "entities": {"server_id": "srv-1", "errorcode_message": "Ecs.0013: insufficient quota"},
    }
    own_reason = ecs_sub | {"job_id": "sub-2", "fail_reason": "its own reason"}
    blank = ecs_sub | {"job_id": "sub-3", "entities": {"errorcode_message": ""}}
    snap = parse_snapshot(EvsJob("b"), evs_body("FAIL", "b", [ecs_sub, own_reason, blank]))
    reasons = [s.fail_reason for s in snap.sub_jobs]
    assert reasons == ["Ecs.0013: insufficient quota", "its own reason", None]
    assert snap.sub_jobs[0].entities == ecs_sub["entities"]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "SUCCESS",
        {"job_id": "j"},  # no status
        {"status": 3},
        {"status": "SUCCESS", "entities": {"sub_jobs": "nope"}},
        {"status": "SUCCESS", "entities": {"sub_jobs": [5]}},
        {"status": "SUCCESS", "entities": {"sub_jobs": [{"status": "INIT", "job_id": "../x"}]}},
        {"status": "SUCCESS", "entities": {"sub_jobs": [{"status": 3}]}},  # there, misfit
        {"status": "SUCCESS", "entities": {"sub_jobs": [{"job_id": 7, "status": "INIT"}]}},
        {"status": "SUCCESS", "begin_time": "yesterday"},
        {"status": "SUCCESS", "entities": []},
    ],
)
def test_evs_misfits_raise_response_validation_error(body: Any) -> None:
    with pytest.raises(ResponseValidationError):
        parse_snapshot(EvsJob("j"), body)


# -- GES management plane ------------------------------------------------------


def check_import_sample(snap: Any, ref: GesJob) -> None:
    assert snap.ref == ref
    assert snap.state is JobState.SUCCEEDED
    assert snap.raw_status == "success"
    assert snap.job_type == "GraphManagement"
    assert snap.job_name == "ImportGraph"
    assert snap.related_graph == "GES_UI_AUTO"
    assert snap.begin_time == datetime(2018, 11, 27, 21, 39, 0, tzinfo=UTC)
    assert snap.end_time == datetime(2018, 11, 27, 21, 39, 56, tzinfo=UTC)
    assert snap.progress == 0
    detail = snap.import_detail
    assert detail is not None
    assert [f.path for f in detail.schema] == ["ges-ui/auDatas/list_set_schema.xml"]
    assert [f.path for f in detail.edges] == ["ges-ui/auDatas/list_set_edge.csv"]
    assert [f.path for f in detail.vertices] == ["ges-ui/auDatas/list_set_vertex.csv"]
    assert all(f.ok and f.log is None and f.cause is None for f in detail)
    assert all(f.total_lines is None for f in detail)
    assert not snap.import_has_failures


def test_ges_v1_flat_sample() -> None:
    ref = GesJob("graph-1", "ff80808167f09aaa0167f19b35ec0305", "v1.0")
    check_import_sample(parse_snapshot(ref, parsed("ges_v1_success")), ref)


def test_ges_v1_wrapped_in_job_key() -> None:
    ref = GesJob("graph-1", "ff80808167f09aaa0167f19b35ec0305", "v1.0")
    body = {"Job": parsed("ges_v1_success"), "errorCode": "", "errorMessage": ""}
    check_import_sample(parse_snapshot(ref, body), ref)


def test_ges_v2_sample() -> None:
    ref = GesJob("graph-1", "ff80808167f09aaa0167f19b35ec0305", "v2")
    check_import_sample(parse_snapshot(ref, parsed("ges_v2_success")), ref)


def test_ges_v1_old_sample() -> None:
    ref = GesJob("g", "j", "v1.0")
    snap = parse_snapshot(ref, parsed("ges_v1_old_success"))
    assert snap.state is JobState.SUCCEEDED
    assert snap.raw_status == "success"
    assert snap.job_type is None
    assert snap.import_detail is None


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("waiting", JobState.PENDING),
        ("pending", JobState.PENDING),
        ("running", JobState.RUNNING),
        ("success", JobState.SUCCEEDED),
        ("failed", JobState.FAILED),
        ("queued", JobState.UNKNOWN),
    ],
)
def test_ges_status_mapping(raw: str, state: JobState) -> None:
    old = {"status": raw, "errorMessage": "", "errorCode": ""}
    assert parse_snapshot(GesJob("g", "j", "v1.0"), old).state is state


def test_ges_import_with_failed_and_part_failed_files() -> None:
    body = {
        "job_id": "j",
        "status": "success",
        "job_name": "ImportGraph",
        "job_detail": {
            "schema_path": [{"path": "s.xml", "status": "success"}],
            "edgeset_path": [
                {
                    "path": "e.csv",
                    "status": "partFailed",
                    "cause": "bad lines",
                    "log": "obs://log/e",
                    "total_lines": 100,
                    "failed_lines": 3,
                    "successful_lines": 97,
                }
            ],
            "vertexset_path": [
                {"path": "v.csv", "status": "failed", "cause": "no such file", "total_lines": -1}
            ],
        },
    }
    snap = parse_snapshot(GesJob("g", "j"), body)
    assert snap.state is JobState.SUCCEEDED
    assert snap.import_has_failures
    detail = snap.import_detail
    assert detail is not None
    assert [(f.kind, f.path, f.status) for f in detail.problems] == [
        ("edges", "e.csv", "partFailed"),
        ("vertices", "v.csv", "failed"),
    ]
    edge = detail.edges[0]
    assert (edge.total_lines, edge.failed_lines, edge.successful_lines) == (100, 3, 97)
    assert edge.log == "obs://log/e"
    assert detail.vertices[0].total_lines is None  # -1: not returned


def test_ges_job_name_as_json_array() -> None:
    body = {"jobId": "j", "status": "running", "jobName": ["ImportGraph"]}
    assert parse_snapshot(GesJob("g", "j", "v1.0"), body).job_name == "ImportGraph"


@pytest.mark.parametrize("name", ["ges_v1_not_found", "ges_v1_old_not_found", "ges_v2_not_found"])
def test_ges_not_found_samples_are_job_not_found(name: str) -> None:
    body = sample(name)
    err = status_error(400, decode_json(body), body=body, request_id="r")
    assert isinstance(err, JobNotFound)
    assert err.status_code == 400
    assert err.error_code == "GES.8301"
    assert err.message == "can not find job, jobId is ff808081646e81d40164c5fb414b2b1a1"


def test_ges_success_with_empty_error_fields_is_not_an_error() -> None:
    body = b'{"status": "running", "errorMessage": "", "errorCode": ""}'
    raise_for_error_body(decode_json(body), body=body, request_id=None)  # must not raise


def test_ges_misfits() -> None:
    with pytest.raises(ResponseValidationError):
        parse_snapshot(GesJob("g", "j"), {"status": "running", "job_detail": {"schema_path": 1}})
    with pytest.raises(ResponseValidationError):
        parse_snapshot(GesJob("g", "j"), {"Job": "oops"})
    with pytest.raises(ResponseValidationError):
        parse_snapshot(GesJob("g", "j"), {"status": "running", "job_progress": "half"})


# -- GES engine list -------------------------------------------------------------


def test_engine_list_sample() -> None:
    page = parse_engine_page("moviejx", parsed("engine_list"))
    assert page.received == 4
    assert page.total_count is None
    assert page.jobs[0].ref == GesEngineJob(
        "moviejx", "62582163123991943683d0f9aa3-f701-48be-a662-360e6a0455da"
    )
    for snap in page.jobs:
        assert snap.state is JobState.SUCCEEDED
        assert snap.raw_status == "complete"
        assert snap.job_type == "import_graph"
        assert snap.request is not None
        assert snap.request["url"] == "/ges/v1.0/10001/graphs/moviejx/action?action_id=import-graph"
        assert snap.request["body"]["schemaPath"].endswith("schema_aikv.xml.bak")


def test_engine_list_schema_drift() -> None:
    body = {
        "result": "success",
        "totalCount": 2,
        "jobs": [
            {"jobId": "a", "status": "running", "taskType": "import", "rawRequest": {"x": 1}},
            {"jobId": "b", "status": "pending", "rawRequest": {"command": "export_graph"}},
        ],
    }
    page = parse_engine_page("g", body)
    assert page.total_count == 2
    a, b = page.jobs
    assert (a.state, a.job_type, a.request) == (JobState.RUNNING, "import", {"x": 1})
    assert (b.state, b.job_type) == (JobState.PENDING, "export_graph")


def test_engine_list_skips_unwatchable_ids(caplog: pytest.LogCaptureFixture) -> None:
    body = {"result": "success", "jobs": [{"jobId": "a/../b", "status": "pending"}]}
    with caplog.at_level(logging.WARNING, logger="jobwatch"):
        page = parse_engine_page("g", body)
    assert page.jobs == ()
    assert page.received == 1
    assert "bad jobId" in caplog.text


def test_engine_graph_not_found_sample() -> None:
    body = sample("engine_graph_not_found")
    err = status_error(400, decode_json(body), body=body)
    assert type(err).__name__ == "BadRequestError"
    assert err.error_code == "GES.8000"
    assert err.message == "graph : movidde not exist"


def test_engine_failed_result_with_200_is_an_error() -> None:
    body = sample("engine_graph_not_found")
    with pytest.raises(APIStatusError) as info:
        raise_for_error_body(decode_json(body), body=body, request_id=None)
    assert info.value.error_code == "GES.8000"


def test_engine_misfits() -> None:
    with pytest.raises(ResponseValidationError):
        parse_engine_page("g", {"jobs": [{"status": "pending"}]})
    with pytest.raises(ResponseValidationError):
        parse_engine_page("g", {"jobs": {"jobId": "a"}})
    with pytest.raises(ResponseValidationError):
        parse_engine_page("g", [1, 2])


# -- shared -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-11-27T21:39:00", datetime(2018, 11, 27, 21, 39, tzinfo=UTC)),
        ("2016-03-08T07:40:13.219Z", datetime(2016, 3, 8, 7, 40, 13, 219000, tzinfo=UTC)),
        ("2016-03-08T15:40:13+08:00", datetime(2016, 3, 8, 7, 40, 13, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_times(text: str | None, expected: datetime | None) -> None:
    assert _common.parse_time(text, "t") == expected


@pytest.mark.parametrize("body", [b"", b"<html>503</html>", b'{"status": "RUN', b"\xff\xfe"])
def test_non_json_bodies(body: bytes) -> None:
    with pytest.raises(ResponseValidationError) as info:
        decode_json(body)
    assert info.value.excerpt == body.decode("utf-8", "replace")
