"""CCE and RDS jobs: parsing, errors, the simulator, and real watches through it.

Samples (``tests/samples/``) are the pages' own:

- ``cce_create_cluster_running.json``: CCE API reference, "Querying a Job"
  (cce_02_0247), example response (the page's sample has a stray comma after
  ``subJobs``, dropped here to make it JSON);
- ``cce_not_found.json``: CCE API reference, "Error Codes" (cce_02_0250), the error
  body's format with the 404 code ``CCE.01404001`` and its message;
- ``rds_*.json``: RDS API reference, "Obtaining Information About a Task with a
  Specified ID" (rds_08_0001 / rds_13_0003), the example responses: creating an
  instance, rebooting one (``entities`` ``{}``), a task that failed (its odd ID
  kept) and one being executed (its keys' stray spaces removed: the page writes
  ``" status"``);
- ``rds_not_found.json``: RDS API reference, "Error Codes", ``DBS.200543`` "The job
  does not exist.", in the shape of "Abnormal Request Results".
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lockstep import lockstep, until

import jobwatch
from jobwatch import (
    AKSKAuth,
    BadRequestError,
    CceJob,
    Client,
    Event,
    GaveUp,
    JobNotFound,
    JobSnapshot,
    JobState,
    JobwatchError,
    PollPolicy,
    RdsJob,
    ResponseValidationError,
    RetryPolicy,
    Transition,
    Watcher,
)
from jobwatch._dialects import parse_snapshot, raise_for_error_body
from jobwatch._dialects._cce import MAX_SUB_JOB_DEPTH, parse_cce_time
from jobwatch._dialects._rds import progress
from jobwatch._exceptions import status_error
from jobwatch._refs import ref_from_dict, ref_to_dict
from jobwatch.sim import CceSubJob, Fault, ManualClock, SimAuth, Simulator, serve

SAMPLES = Path(__file__).parent / "samples"
P = "proj-1"
FAST = PollPolicy(
    wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0, not_found_grace=2.0
)
QUICK_RETRY = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002)
PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.UNKNOWN,
)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text(encoding="utf-8"))


def utc(year: int, month: int, day: int, *clock: int) -> datetime:
    hour, minute, second, micro = (*clock, 0, 0, 0, 0)[:4]
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def cce(phase: str | None = "Running", **parts: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": "Job", "apiVersion": "v3", **parts}
    if phase is not None:
        body.setdefault("status", {"phase": phase})
    return body


# -- CCE: parsing --------------------------------------------------------------------------------


def test_the_cce_sample_reads_into_a_snapshot_with_its_sub_jobs() -> None:
    data = sample("cce_create_cluster_running.json")
    snap = parse_snapshot(CceJob("354331b2c-229a-11e8-9c75-0255ac100ceb"), data)
    assert (snap.state, snap.raw_status, snap.job_type) == (RUNNING, "Running", "CreateCluster")
    assert snap.begin_time == datetime(2020, 2, 2, 8, 12, 40, 672772, tzinfo=UTC)
    assert snap.end_time is None  # running: its updateTimestamp is not an end
    assert snap.fail_reason is None
    assert snap.entities == {
        "type": "CreateCluster",
        "clusterUID": "4d1ecb2c-229a-11e8-9c75-0255ac100ceb",
        "resourceID": "6f4dcb2c-229a-11e8-9c75-0255ac100ceb",
        "resourceName": "cluster-name",
        "extendParam": {"serverID": "bc467e3a-2338-11e8-825b-0255ac100c13"},
    }
    assert [s.ref for s in snap.sub_jobs] == [
        CceJob("fd474fab-9606-11e8-baa9-0255ac10215d"),
        CceJob("fd474f82-9606-11e8-baa8-0255ac10215d"),
    ]
    master = snap.sub_jobs[0]
    assert (master.state, master.job_type) == (SUCCEEDED, "InstallMaster")
    assert master.end_time == datetime(2020, 2, 2, 4, 5, 29, 196243, tzinfo=UTC)
    assert master.raw is data["spec"]["subJobs"][0]
    assert snap.failed_sub_jobs == ()


def test_a_failed_cce_job_gives_its_reason_and_only_a_failed_one_does() -> None:
    failed = cce(status={"phase": "Failed", "reason": "Create master failed"})
    assert parse_snapshot(CceJob("j"), failed).fail_reason == "Create master failed"
    running = cce(status={"phase": "Running", "reason": "installing master"})
    assert parse_snapshot(CceJob("j"), running).fail_reason is None
    assert (
        parse_snapshot(CceJob("j"), cce(status={"phase": "Failed", "reason": ""})).fail_reason
        is None
    )


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        ("Initializing", PENDING),
        ("Running", RUNNING),
        ("Success", SUCCEEDED),
        ("Failed", FAILED),
        ("SUCCESS", SUCCEEDED),  # matched case-insensitively, kept as sent
        ("Pending", UNKNOWN),
        ("Deleting", UNKNOWN),
        ("", UNKNOWN),
    ],
)
def test_cce_phases(phase: str, state: JobState) -> None:
    snap = parse_snapshot(CceJob("j"), cce(phase))
    assert (snap.state, snap.raw_status, snap.terminal) == (state, phase, state.terminal)


def test_cce_sub_jobs_nest_and_keep_what_they_have() -> None:
    leaf = cce("Failed", metadata={"uid": "leaf"})
    leaf["status"]["reason"] = "no capacity"
    middle = cce(
        "Running", metadata={"uid": "mid"}, spec={"type": "InstallNode", "subJobs": [leaf]}
    )
    nameless = {"spec": {"type": "CreatePSMCert"}}  # no metadata, no status
    top = cce("Running", spec={"subJobs": [middle, nameless]})
    snap = parse_snapshot(CceJob("top"), top)
    assert [s.ref for s in snap.walk()] == [
        CceJob("top"),
        CceJob("mid"),
        CceJob("leaf"),
        CceJob("top.subJobs.1"),
    ]
    assert [s.ref for s in snap.failed_sub_jobs] == [CceJob("leaf")]
    assert snap.sub_jobs[0].sub_jobs[0].fail_reason == "no capacity"
    placed = snap.sub_jobs[1]
    assert (placed.state, placed.raw_status, placed.begin_time) == (UNKNOWN, None, None)
    # a parent whose ID ends in "." still gives its place-named sub-jobs valid IDs
    dotted = parse_snapshot(CceJob("a."), cce(spec={"subJobs": [nameless]}))
    assert dotted.sub_jobs[0].ref.job_id.endswith(".subJobs.0")
    assert ".." not in dotted.sub_jobs[0].ref.job_id


def test_cce_sub_jobs_deeper_than_the_limit_are_refused() -> None:
    body: dict[str, Any] = cce("Running", metadata={"uid": "deepest"})
    for n in range(MAX_SUB_JOB_DEPTH + 1):
        body = cce("Running", metadata={"uid": f"j{n}"}, spec={"subJobs": [body]})
    with pytest.raises(ResponseValidationError, match="nested deeper"):
        parse_snapshot(CceJob("top"), body)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([], "must be a JSON object"),
        ({"kind": "Job"}, "status.phase"),
        (cce(None, status={"reason": "x"}), "status.phase"),
        (cce(None, status={"phase": 3}), "status.phase"),
        # the Kubernetes-style error body some CCE APIs send: not a job
        ({"kind": "Status", "status": "Failure", "message": "x", "code": 404}, "status"),
        (cce(spec={"subJobs": {"a": 1}}), "subJobs"),
        (cce(spec={"subJobs": ["x"]}), "must be a JSON object"),
        (cce(spec={"subJobs": [cce(metadata={"uid": "a/b"})]}), "bad metadata.uid"),
        (cce(metadata={"creationTimestamp": "yesterday"}), "creationTimestamp"),
        (cce(metadata="x"), "metadata"),
    ],
)
def test_cce_bodies_that_do_not_fit(body: object, match: str) -> None:
    with pytest.raises(ResponseValidationError, match=match):
        parse_snapshot(CceJob("j"), body)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-02-02 08:12:40.672772389 +0000 UTC", utc(2020, 2, 2, 8, 12, 40, 672772)),
        ("2020-02-02 08:12:40 +0000 UTC", utc(2020, 2, 2, 8, 12, 40)),
        ("2020-02-02 16:12:40.5 +0800 CST", utc(2020, 2, 2, 8, 12, 40, 500000)),
        ("2020-02-02 08:12:40.1 +0000", utc(2020, 2, 2, 8, 12, 40, 100000)),
        ("2020-02-02T08:12:40Z", utc(2020, 2, 2, 8, 12, 40)),
        ("2020-02-02T08:12:40", utc(2020, 2, 2, 8, 12, 40)),
        ("", None),
    ],
)
def test_cce_times(text: str, expected: datetime | None) -> None:
    assert parse_cce_time(text, "t") == expected


@pytest.mark.parametrize(
    "text", ["2020-02-02 08:12:40 UTC", "02/02/2020", "2020-13-02 08:12:40 +0000"]
)
def test_cce_times_that_are_not(text: str) -> None:
    with pytest.raises(ResponseValidationError, match="is not a time"):
        parse_cce_time(text, "t")


# -- RDS: parsing --------------------------------------------------------------------------------


def test_the_rds_samples_read_into_snapshots() -> None:
    done = parse_snapshot(RdsJob("31b8ae23"), sample("rds_create_completed.json"))
    assert (done.state, done.raw_status, done.job_name) == (
        SUCCEEDED,
        "Completed",
        "CreateMysqlSingleHAInstance",
    )
    assert (done.begin_time, done.end_time) == (
        utc(2018, 8, 6, 10, 41, 14),
        utc(2018, 8, 6, 16, 41, 14),
    )
    assert done.progress is None
    assert done.fail_reason is None
    assert done.entities is not None
    assert done.entities["resource_ids"][0] == "a48e43ff268f4c0e879652d65e63d0fbin01.vm"
    assert done.raw["instance"]["id"] == "a48e43ff268f4c0e879652d65e63d0fbin01"

    running = parse_snapshot(RdsJob("31b8ae23"), sample("rds_running.json"))
    assert (running.state, running.progress, running.end_time) == (RUNNING, 60.0, None)

    failed = parse_snapshot(RdsJob("31b8ae23"), sample("rds_failed.json"))
    assert (failed.state, failed.fail_reason) == (FAILED, "createVM failed.")

    reboot = parse_snapshot(RdsJob("31b8ae23"), sample("rds_reboot_no_entities.json"))
    assert (reboot.state, reboot.entities) == (SUCCEEDED, {})


@pytest.mark.parametrize(
    ("status", "state"),
    [
        ("Running", RUNNING),
        ("Completed", SUCCEEDED),
        ("Failed", FAILED),
        ("Pending", PENDING),  # TaurusDB's word on the same API
        ("completed", SUCCEEDED),
        ("Success", UNKNOWN),
        ("Deleted", UNKNOWN),
    ],
)
def test_rds_statuses(status: str, state: JobState) -> None:
    snap = parse_snapshot(RdsJob("j"), {"job": {"status": status}})
    assert (snap.state, snap.raw_status) == (state, status)


def test_rds_times_with_an_offset_are_utc() -> None:
    body = {"job": {"status": "Failed", "created": "2021-07-12T09:22:04+0800", "ended": ""}}
    snap = parse_snapshot(RdsJob("j"), body)
    assert (snap.begin_time, snap.end_time) == (utc(2021, 7, 12, 1, 22, 4), None)


@pytest.mark.parametrize(
    ("process", "value"),
    [
        *[("60%", 60.0), ("60", 60.0), (" 60 % ", 60.0), ("12.5%", 12.5), ("", None)],
        *[(None, None), ("sixty", None), ("nan%", None), ("-5%", None), ("1e3", None)],
        ("60%%", None),
    ],
)
def test_rds_progress(process: str | None, value: float | None) -> None:
    assert progress(process) == value


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({}, "job"),
        ({"job": {}}, "status"),
        ({"job": []}, "job"),
        ({"job": {"status": 1}}, "status"),
        ({"job": {"status": "Running", "entities": []}}, "entities"),
        ({"job": {"status": "Running", "created": "soon"}}, "job.created"),
        ("Running", "must be a JSON object"),
        # the page's running sample as printed: its key is " status"
        ({"job": {" status": "Running", "name": "CreateMysqlSingleHAInstance"}}, "status"),
    ],
)
def test_rds_bodies_that_do_not_fit(body: object, match: str) -> None:
    with pytest.raises(ResponseValidationError, match=match):
        parse_snapshot(RdsJob("j"), body)


# -- errors as sent ------------------------------------------------------------------------------


def test_the_documented_not_found_answers_are_job_not_found() -> None:
    cce_error = status_error(404, sample("cce_not_found.json"))
    assert isinstance(cce_error, JobNotFound)
    assert (cce_error.error_code, cce_error.message) == ("CCE.01404001", "Resource not found.")
    rds_error = status_error(400, sample("rds_not_found.json"))
    assert isinstance(rds_error, JobNotFound)  # a 400, not a BadRequestError
    assert (rds_error.error_code, rds_error.message) == ("DBS.200543", "The job does not exist.")
    other = status_error(400, {"error_code": "DBS.200001", "error_msg": "Parameter error."})
    assert type(other) is BadRequestError


@pytest.mark.parametrize(
    "name",
    [
        "cce_create_cluster_running.json",
        "rds_create_completed.json",
        "rds_failed.json",
        "rds_running.json",
        "rds_reboot_no_entities.json",
    ],
)
def test_job_bodies_are_not_taken_for_error_bodies(name: str) -> None:
    raise_for_error_body(sample(name), body=b"", request_id=None)


def test_an_error_body_in_a_200_is_still_an_error() -> None:
    with pytest.raises(JobNotFound):
        raise_for_error_body(sample("rds_not_found.json"), body=b"", request_id=None)
    with pytest.raises(JobNotFound):
        raise_for_error_body(sample("cce_not_found.json"), body=b"", request_id=None)


# -- references ----------------------------------------------------------------------------------

ids = st.text(st.sampled_from("abcXYZ019._-"), min_size=1, max_size=40).filter(
    lambda s: ".." not in s
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(job_id=ids, kind=st.sampled_from([CceJob, RdsJob]))
def test_the_json_form_reads_back(job_id: str, kind: type[CceJob] | type[RdsJob]) -> None:
    ref = kind(job_id)
    form = ref_to_dict(ref)
    assert form == {"api": "cce" if kind is CceJob else "rds", "job_id": job_id}
    assert ref_from_dict(json.loads(json.dumps(form))) == ref
    assert str(ref) == f"{form['api']}:{job_id}"


@pytest.mark.parametrize("bad", ["", "a/b", "..", "a b", "é", "x" * 257, None, 7])
@pytest.mark.parametrize("api", ["cce", "rds"])
def test_bad_ids_are_refused_before_any_url(api: str, bad: object) -> None:
    with pytest.raises(ValueError, match="job_id"):
        ref_from_dict({"api": api, "job_id": bad})


def test_paths_and_the_query() -> None:
    assert CceJob("j-1").path("p 1") == "/api/v3/projects/p%201/jobs/j-1"
    assert RdsJob("j-1").path("p") == "/v3/p/jobs"
    assert RdsJob("j-1").params() == {"id": "j-1"}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    data=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=12),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        *["job", "status", "phase", "reason", "spec", "subJobs", "metadata"],
                        *["uid", "creationTimestamp", "updateTimestamp", "created", "ended"],
                    ]
                ),
                inner,
                max_size=5,
            )
        ),
        max_leaves=25,
    ),
    ref=st.sampled_from([CceJob("j"), RdsJob("j")]),
)
def test_any_body_gives_a_snapshot_or_our_error(data: object, ref: CceJob | RdsJob) -> None:
    try:
        snap = parse_snapshot(ref, data)
    except JobwatchError:
        return
    assert isinstance(snap, JobSnapshot)
    assert all(isinstance(s.ref, type(ref)) for s in snap.walk())


# -- through the simulator -----------------------------------------------------------------------


def client_for(sim: Simulator[Any], **kwargs: Any) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Client("http://sim.test", P, transport=sim.transport(), **kwargs)


def steps(events: list[Event], ref: Any) -> list[tuple[Any, Any]]:
    out: list[tuple[Any, Any]] = []
    for e in events:
        if e.ref == ref:
            out.append(
                (e.previous, e.state) if isinstance(e, Transition) else ("gave_up", e.reason)
            )
    return out


@pytest.mark.anyio
async def test_a_cce_cluster_job_and_its_sub_jobs_through_a_watcher() -> None:
    sim = Simulator(clock=ManualClock())
    master = CceSubJob("master", [(1, "Running"), (3, "Success")], job_type="InstallMaster")
    cert = CceSubJob(
        "cert", [(2, "Initializing"), (3, "Failed")], appear_at=2, reason="cert failed"
    )
    sim.add_cce_job(
        P,
        "cluster-job",
        [(0, "Initializing"), (1, "Running"), (4, "Success")],
        cluster_uid="c-1",
        sub_jobs=[master, cert],
    )
    top = CceJob("cluster-job")
    events = await lockstep(sim, client_for(sim), [top], [1, 2, 3, 4], FAST)
    assert steps(events, top) == [(None, PENDING), (PENDING, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, CceJob("master")) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert steps(events, CceJob("cert")) == [(None, PENDING), (PENDING, FAILED)]
    assert {e.ref: e.parent for e in events}[CceJob("cert")] == top
    final = [e for e in events if e.ref == top][-1]
    assert isinstance(final, Transition)
    assert final.snapshot.end_time == utc(2024, 1, 1, 0, 0, 4)
    assert final.snapshot.entities == {"type": "CreateCluster", "clusterUID": "c-1"}
    assert [(s.ref, s.fail_reason) for s in final.failed_sub_jobs] == [
        (CceJob("cert"), "cert failed")
    ]
    assert set(Counter(e.ref for e in events if e.final).values()) == {1}


@pytest.mark.anyio
async def test_an_rds_job_through_a_watcher() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_rds_job(P, "r-1", [(0, "Running"), (2, "Completed")], process=[(0, "10%"), (1, "60%")])
    sim.add_rds_job(P, "r-2", [(0, "Running"), (2, "Failed")], fail_reason="createVM failed.")
    refs = [RdsJob("r-1"), RdsJob("r-2")]
    seen: list[float | None] = []
    sim.clock.set(0)
    events = await lockstep(sim, client_for(sim), refs, [1, 2], FAST)
    for e in events:
        if e.ref == refs[0] and isinstance(e, Transition):
            seen.append(e.snapshot.progress)
    assert steps(events, refs[0]) == [(None, RUNNING), (RUNNING, SUCCEEDED)]
    assert seen == [10.0, None]
    assert steps(events, refs[1]) == [(None, RUNNING), (RUNNING, FAILED)]
    failed = [e for e in events if e.ref == refs[1]][-1]
    assert isinstance(failed, Transition)
    assert failed.snapshot.fail_reason == "createVM failed."
    assert failed.snapshot.end_time == utc(2024, 1, 1, 0, 0, 2)
    asked = {(r.path, r.query) for r in sim.requests}
    assert asked == {("/v3/proj-1/jobs", "id=r-1"), ("/v3/proj-1/jobs", "id=r-2")}


@pytest.mark.anyio
async def test_give_ups_of_jobs_the_service_does_not_have() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_cce_job(P, "gone", [(0, "Running"), (1, "Success")], expires_after=0.5)
    sim.add_rds_job(P, "gone-too", [(0, "Running"), (1, "Completed")], expires_after=0.5)
    policy = PollPolicy(wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, not_found_grace=0.1)
    refs: list[jobwatch.JobRef] = [
        CceJob("nope"),
        RdsJob("nope"),
        CceJob("gone"),
        RdsJob("gone-too"),
    ]
    events: list[Event] = []
    async with client_for(sim) as client, Watcher(client, policy=policy) as watcher:
        watcher.watch_many(refs)
        with anyio.fail_after(20):
            await until(
                lambda: (
                    {r.job for r in sim.requests if r.status_code == 200} >= {"gone", "gone-too"}
                )
            )
            sim.clock.set(5)  # ended at 1, deleted at 1.5: the watch sees them gone
            events = [e async for e in watcher.events()]
    reasons = {e.ref: e.reason for e in events if isinstance(e, GaveUp)}
    assert reasons == {
        CceJob("nope"): "not_found",
        RdsJob("nope"): "not_found",
        CceJob("gone"): "expired",
        RdsJob("gone-too"): "expired",
    }
    codes = {(r.api, r.status_code) for r in sim.requests if r.job in ("nope", "gone", "gone-too")}
    assert ("cce", 404) in codes
    assert ("rds", 400) in codes


@pytest.mark.anyio
async def test_wait_for_takes_cce_and_rds_references() -> None:
    sim = Simulator()
    sim.add_cce_job(P, "c", [(0, "Running"), (0.05, "Success")])
    sim.add_rds_job(P, "r", [(0, "Running"), (0.05, "Completed")])
    async with client_for(sim) as client:
        finals = await jobwatch.wait_for(
            [CceJob("c"), RdsJob("r")], client=client, timeout=10, policy=FAST
        )
        single = await jobwatch.wait_for(RdsJob("r"), client=client, timeout=10, policy=FAST)
    assert [f.state for f in finals] == [SUCCEEDED, SUCCEEDED]
    assert single.ref == RdsJob("r")


@pytest.mark.anyio
async def test_faults_reach_the_cce_and_rds_routes() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_cce_job(P, "c", [(0, "Running")], faults=[Fault("http_500", count=1)])
    sim.add_rds_job(P, "r", [(0, "Running")])
    sim.add_fault(Fault("http_503_html", api="rds", count=1))
    sim.add_fault(Fault("unknown_status", api="cce", window=(10, 20), status="Deleting"))
    sim.add_fault(Fault("unknown_status", api="rds", window=(10, 20), status="Queued"))
    async with client_for(sim) as client:
        assert (await client.fetch(CceJob("c"))).state is RUNNING  # after one 500, retried
        assert (await client.fetch(RdsJob("r"))).state is RUNNING  # after one 503, retried
        sim.clock.set(10)
        odd = [await client.fetch(ref) for ref in (CceJob("c"), RdsJob("r"))]
    assert [(s.state, s.raw_status) for s in odd] == [(UNKNOWN, "Deleting"), (UNKNOWN, "Queued")]
    faulted = [(r.api, r.status_code, r.fault) for r in sim.requests if r.fault is not None]
    assert faulted[:2] == [("cce", 500, "http_500"), ("rds", 503, "http_503_html")]
    assert client.statistics().retries == 2


@pytest.mark.anyio
async def test_simulated_error_bodies_have_each_service_s_shape() -> None:
    sim = Simulator()
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as http:
        cce_missing = await http.get(f"/api/v3/projects/{P}/jobs/nope")
        rds_no_id = await http.get(f"/v3/{P}/jobs")
        sim.add_fault(Fault("http_500", api="rds", error_code="DBS.200005"))
        rds_500 = await http.get(f"/v3/{P}/jobs", params={"id": "x"})
    assert (cce_missing.status_code, cce_missing.json()) == (404, sample("cce_not_found.json"))
    assert (rds_no_id.status_code, rds_no_id.json()) == (
        400,
        {"error_code": "DBS.200001", "error_msg": "Parameter error."},
    )
    assert rds_500.status_code == 500
    assert rds_500.json()["error_code"] == "DBS.200005"
    assert [r.api for r in sim.requests] == ["cce", "rds", "rds"]


@pytest.mark.anyio
async def test_the_query_travels_and_is_signed_alike_on_both_stacks(
    on_stack: Callable[..., Client],
) -> None:
    sim = Simulator(auth=SimAuth(credentials={"AK": "SK"}))
    sim.add_rds_job(P, "r-1", [(0, "Completed")])
    sim.add_cce_job(P, "c-1", [(0, "Success")])
    with serve(sim) as url:
        async with on_stack(url, auth=AKSKAuth("AK", "SK"), retry=QUICK_RETRY) as client:
            rds = await client.fetch(RdsJob("r-1"))
            cce_snap = await client.fetch(CceJob("c-1"))
            with pytest.raises(JobNotFound):
                await client.fetch(RdsJob("r-2"))
    assert (rds.state, cce_snap.state) == (SUCCEEDED, SUCCEEDED)
    seen = [(r.path, r.query, r.status_code) for r in sim.requests]
    assert seen == [
        ("/v3/proj-1/jobs", "id=r-1", 200),  # the signature covered the query: accepted
        ("/api/v3/projects/proj-1/jobs/c-1", "", 200),
        ("/v3/proj-1/jobs", "id=r-2", 400),
    ]


def test_simulator_input_is_checked() -> None:
    sim = Simulator()
    sim.add_cce_job(P, "a", [(0, "Running")], sub_jobs=[CceSubJob("b", [(0, "Running")])])
    with pytest.raises(ValueError, match="already has CCE jobs"):
        sim.add_cce_job(P, "b", [(0, "Running")])
    with pytest.raises(ValueError, match="repeats a job id"):
        sim.add_cce_job(P, "c", [(0, "Running")], sub_jobs=[CceSubJob("c", [(0, "Running")])])
    sim.add_rds_job(P, "r", [(0, "Running")])
    with pytest.raises(ValueError, match="already has RDS job"):
        sim.add_rds_job(P, "r", [(0, "Running")])
    with pytest.raises(TypeError, match="sub_jobs must be CceSubJob"):
        CceSubJob("x", [(0, "Running")], sub_jobs=["y"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="entities must be a mapping"):
        sim.add_rds_job(P, "r2", [(0, "Running")], entities=["x"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="job_id"):
        sim.add_rds_job(P, "r/2", [(0, "Running")])
    assert sim.project_ids() == {P}


@pytest.mark.anyio
async def test_scenarios_describe_cce_and_rds_jobs() -> None:
    scenario: dict[str, Any] = {
        "clock": "manual",
        "cce_jobs": [
            {
                "project_id": P,
                "job_id": "c",
                "timeline": [[0, "Initializing"], [5, "Success"]],
                "sub_jobs": [
                    {"job_id": "c-a", "timeline": [[1, "Running"], [4, "Failed"]], "reason": "x"}
                ],
            }
        ],
        "rds_jobs": [{"project_id": P, "job_id": "r", "timeline": [[0, "Running"]]}],
    }
    sim = Simulator.from_scenario(scenario)
    sim.clock.set(4)  # type: ignore[attr-defined]  # a ManualClock, as the scenario says
    async with client_for(sim) as client:
        snap = await client.fetch(CceJob("c"))
        rds = await client.fetch(RdsJob("r"))
    assert [(s.ref, s.state, s.fail_reason) for s in snap.sub_jobs] == [
        (CceJob("c-a"), FAILED, "x")
    ]
    assert rds.state is RUNNING
    evs_style: dict[str, Any] = {
        "job_id": "y",
        "timeline": [[0, "Running"]],
        "fail_reason": "an EVS field",
    }
    bad: dict[str, Any] = {
        "cce_jobs": [{"project_id": P, "job_id": "z", "timeline": [[0, "Running"]]}]
    }
    bad["cce_jobs"][0]["sub_jobs"] = [evs_style]
    with pytest.raises(ValueError, match=r"cce_jobs\[0\].sub_jobs\[0\]: unknown keys"):
        Simulator.from_scenario(bad)
