"""The EVS-style job family: one kind per service, its bodies, its simulator, its tokens.

Samples in tests/samples, and where their bodies come from:

- ``ecs_batch_success``: ECS API reference, "Querying Job Execution Status"
  (ecs_02_0901), example response (a ``createServer`` job with one sub-job);
- ``bms_batch_running``: BMS API reference, "Querying Task Statuses"
  (bms_api_0640): the fields and IDs of its example, the job still running;
- ``eip_batch_success``: EIP API reference, "Querying Job Status"
  (``ShowResourcesJobDetail``), example response, as printed;
- ``ims_create_success`` / ``ims_ova_success``: IMS API reference, "Querying the
  Status of an Asynchronous Job" (ims_03_0905), the ``imsCreateImageByInstance``
  and ``imsImportOvaImageJob`` examples (the second's sub-job entities cut off in
  the copy read, completed with the ``SubJobEntities`` fields of the SDK);
- ``ims_cloudimages_progress``: IMS, "Querying the Progress of an Asynchronous
  Job" (ims_03_0911): its example's entities (``process_percent`` 0.24,
  ``current_task``), the job still running;
- ``sdrs_success``: SDRS API reference, "Querying the Job Status" (sdrs_05_0101):
  the job ID of its example request, ``server_group_id`` entities;
- ``dcs_success``: DCS API reference, "Querying the Job Execution Result of a
  Tenant": the millisecond times the page gives as the format.

No DEH or EVS v2 page was found: their bodies here are the family's, built inline.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lockstep import lockstep

import jobwatch
from jobwatch import (
    BmsJob,
    Client,
    DcsJob,
    DehJob,
    EcsJob,
    Event,
    EvsJob,
    EvsV2Job,
    ImsCloudImagesJob,
    ImsJob,
    JobNotFound,
    JobState,
    PollPolicy,
    ResponseValidationError,
    RetryPolicy,
    SdrsJob,
    Transition,
    VpcJob,
    Watcher,
)
from jobwatch._dialects import parse_snapshot
from jobwatch._kinds import kind_named, kind_of
from jobwatch._refs import ref_from_dict, ref_to_dict
from jobwatch._resume import load_state
from jobwatch.sim import FamilyService, Fault, ManualClock, Simulator, SubJob, serve

SAMPLES = Path(__file__).parent / "samples"
P = "proj-1"
FAST = PollPolicy(wait_initial=0.01, wait_exp_base=2, wait_max=0.04, wait_jitter=0.0)
QUICK_RETRY = RetryPolicy(attempts=2, wait_initial=0.001, wait_max=0.002)
PENDING, RUNNING, SUCCEEDED, FAILED, UNKNOWN = (
    JobState.PENDING,
    JobState.RUNNING,
    JobState.SUCCEEDED,
    JobState.FAILED,
    JobState.UNKNOWN,
)

# kind name -> (reference class, status path of job "j" under P)
FAMILY: dict[str, tuple[type[Any], str]] = {
    "evs": (EvsJob, f"/v1/{P}/jobs/j"),
    "ecs": (EcsJob, f"/v1/{P}/jobs/j"),
    "bms": (BmsJob, f"/v1/{P}/jobs/j"),
    "vpc": (VpcJob, f"/v1/{P}/jobs/j"),
    "ims": (ImsJob, f"/v1/{P}/jobs/j"),
    "ims-cloudimages": (ImsCloudImagesJob, "/v1/cloudimages/job/j"),
    "deh": (DehJob, f"/v1/{P}/jobs/j"),
    "sdrs": (SdrsJob, f"/v1/{P}/jobs/j"),
    "evs-v2": (EvsV2Job, f"/v2/{P}/jobs/j"),
    "dcs": (DcsJob, f"/v2/{P}/jobs/j"),
}
# entities each service's jobs carry in the simulator (its documented fields)
ENTITIES: dict[str, dict[str, Any]] = {
    "evs": {"volume_id": "v-1"},
    "ecs": {"server_id": "s-1"},
    "bms": {"server_id": "bm-1"},
    "vpc": {"publicip_id": "ip-1"},
    "ims": {"image_id": "img-1", "image_name": "test"},
    "ims-cloudimages": {"image_id": "img-1", "process_percent": 0.5},
    "deh": {"dedicated_host_id": "h-1"},
    "sdrs": {"server_group_id": "sg-1"},
    "evs-v2": {"snapshot_group_id": "g-1"},
    "dcs": {},
}


def svc(name: str) -> FamilyService:
    assert name in FAMILY
    return cast("FamilyService", name)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def family_body(status: str, job_id: str = "j", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "job_id": job_id,
        "job_type": "t",
        "begin_time": "2024-01-01T00:00:00.000Z",
        "end_time": "",
        "error_code": None,
        "fail_reason": None,
        "entities": {},
        **extra,
    }


def client_for(sim: Simulator[Any], **kwargs: Any) -> Client:
    kwargs.setdefault("retry", QUICK_RETRY)
    return Client("http://sim.test", P, transport=sim.transport(), **kwargs)


# -- references and their JSON form ------------------------------------------------------------


@pytest.mark.parametrize("name", FAMILY)
def test_each_kind_prints_paths_and_round_trips(name: str) -> None:
    ref_type, path = FAMILY[name]
    ref = ref_type("j")
    assert str(ref) == f"{name}:j"
    assert ref.path(P) == path
    assert kind_of(ref).name == name
    assert kind_named(name) is kind_of(ref)
    assert ref_to_dict(ref) == {"api": name, "job_id": "j"}
    back = ref_from_dict(json.loads(json.dumps(ref_to_dict(ref))))
    assert back == ref
    assert type(back) is ref_type
    assert getattr(jobwatch, ref_type.__name__) is ref_type
    assert ref_type.__doc__


def test_refs_of_two_services_are_never_equal() -> None:
    refs = [ref_type("same") for ref_type, _ in FAMILY.values()]
    assert len(set(refs)) == len(refs)
    assert len({EvsJob("same"), EcsJob("same"), DcsJob("same")}) == 3


def test_evs_json_form_and_tokens_are_unchanged() -> None:
    assert ref_to_dict(EvsJob("ff80")) == {"api": "evs", "job_id": "ff80"}
    assert ref_from_dict({"api": "evs", "job_id": "ff80"}) == EvsJob("ff80")
    assert str(EvsJob("ff80")) == "evs:ff80"


@given(
    name=st.sampled_from(sorted(FAMILY)),
    job_id=st.text(st.sampled_from("abcXYZ019-_."), min_size=1, max_size=256).filter(
        lambda s: ".." not in s
    ),
)
def test_json_form_round_trips_for_every_kind(name: str, job_id: str) -> None:
    ref = FAMILY[name][0](job_id)
    data = json.loads(json.dumps(ref_to_dict(ref)))
    assert ref_from_dict(data) == ref
    assert type(ref_from_dict(data)) is type(ref)


@pytest.mark.parametrize("name", FAMILY)
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({}, "job_id must be a string"),
        ({"job_id": ""}, "must not be empty"),
        ({"job_id": "../etc"}, "job_id"),
        ({"job_id": "a/b"}, "job_id"),
        ({"job_id": 7}, "must be a string"),
        ({"job_id": "x" * 257}, "at most 256"),
    ],
)
def test_ref_from_dict_refuses_bad_data(name: str, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ref_from_dict({"api": name, **extra})


@pytest.mark.parametrize("api", ["ECS", "ims_cloudimages", "evs-v3", "dcs ", None])
def test_ref_from_dict_refuses_unknown_apis(api: object) -> None:
    with pytest.raises(ValueError, match="unknown job API"):
        ref_from_dict({"api": api, "job_id": "j"})


# -- bodies into snapshots -----------------------------------------------------------------------


def test_ecs_sample_keeps_its_entities_and_sub_jobs_are_ecs_refs() -> None:
    snap = parse_snapshot(EcsJob("2c9eb2c5544cbf6101544f0602af2b4f"), sample("ecs_batch_success"))
    assert snap.state is SUCCEEDED
    assert snap.job_type == "createServer"
    assert snap.begin_time == datetime(2016, 4, 25, 20, 4, 34, 604000, tzinfo=UTC)
    assert snap.entities is not None
    assert snap.entities["sub_jobs_total"] == 1
    (sub,) = snap.sub_jobs
    assert sub.ref == EcsJob("2c9eb2c5544cbf6101544f0635672b60")
    assert type(sub.ref) is EcsJob
    assert sub.entities == {"server_id": "bae51750-0089-41a1-9b18-5c777978ecb6"}


def test_bms_sample_running_with_a_bms_sub_job() -> None:
    snap = parse_snapshot(BmsJob("2c9eb2c5544cbf6101544f0602af2b4f"), sample("bms_batch_running"))
    assert snap.state is RUNNING
    assert snap.end_time is None
    (sub,) = snap.sub_jobs
    assert type(sub.ref) is BmsJob
    assert sub.state is PENDING


def test_eip_sample_has_no_sub_jobs() -> None:
    snap = parse_snapshot(VpcJob("ff808082843684110184e155fdb36461"), sample("eip_batch_success"))
    assert snap.state is SUCCEEDED
    assert snap.sub_jobs == ()
    assert snap.job_type == "createBatchPublicip"
    assert snap.end_time == datetime(2022, 12, 5, 8, 10, 21, 864000, tzinfo=UTC)


def test_ims_samples_sub_jobs_come_from_sub_jobs_result() -> None:
    created = parse_snapshot(
        ImsJob("9a175ac792fa12d20193002100dd2762"), sample("ims_create_success")
    )
    assert created.state is SUCCEEDED
    assert created.entities == {
        "image_name": "test",
        "image_id": "3f7185de-b59a-4bb8-aa1d-7a513528b0e9",
    }
    ova = parse_snapshot(ImsJob("9a175ac892fa13420193006a49173317"), sample("ims_ova_success"))
    (sub,) = ova.sub_jobs
    assert sub.ref == ImsJob("9a175ac892fa13420193006c29e133f0")
    assert sub.entities is not None
    assert sub.entities["image_id"].startswith("431df7fd")
    # on the cloudimages path the same body gives cloudimages references
    again = parse_snapshot(ImsCloudImagesJob("x"), sample("ims_ova_success"))
    assert type(again.sub_jobs[0].ref) is ImsCloudImagesJob


def test_ims_cloudimages_sample_gives_progress() -> None:
    snap = parse_snapshot(
        ImsCloudImagesJob("ff8080814dbd65d7014dbe0d84db0013"), sample("ims_cloudimages_progress")
    )
    assert snap.state is RUNNING
    assert snap.progress == 0.24
    assert snap.entities is not None
    assert snap.entities["current_task"].startswith("ImportImage")


def test_sdrs_sample() -> None:
    snap = parse_snapshot(SdrsJob("0000000062db92d70162db9d200f000a"), sample("sdrs_success"))
    assert snap.state is SUCCEEDED
    assert snap.entities == {"server_group_id": "1b5ddf57-8b2f-4a6a-a5c4-61dd8b0d7c6d"}


def test_dcs_sample_times_are_milliseconds() -> None:
    snap = parse_snapshot(DcsJob("ff80808188220b2f01882216c0b20007"), sample("dcs_success"))
    assert snap.state is SUCCEEDED
    assert snap.begin_time == datetime(2023, 5, 15, 22, 59, 5, 379000, tzinfo=UTC)
    assert snap.end_time == datetime(2023, 5, 15, 22, 59, 8, 248000, tzinfo=UTC)
    assert snap.entities is None
    assert snap.sub_jobs == ()


@pytest.mark.parametrize(
    ("ref", "raw", "state"),
    [
        (EcsJob("j"), "PENDING_PAYMENT", PENDING),
        (BmsJob("j"), "pending_payment", PENDING),
        (VpcJob("j"), "PENDING_PAYMENT", UNKNOWN),  # not a word VPC documents
        (DcsJob("j"), "INIT", PENDING),
        (SdrsJob("j"), "RUNNING", RUNNING),
        (DehJob("j"), "FAIL", FAILED),
        (EvsV2Job("j"), "SUCCESS", SUCCEEDED),
        (ImsJob("j"), "LISTENING", UNKNOWN),
        (EvsJob("j"), "LISTENING", RUNNING),  # EVS's own extra words stay
        (EcsJob("j"), "DONE", UNKNOWN),
    ],
)
def test_status_words_per_service(ref: Any, raw: str, state: JobState) -> None:
    body = family_body(raw)
    if isinstance(ref, DcsJob):
        body["begin_time"] = "1704067200000"
    snap = parse_snapshot(ref, body)
    assert snap.state is state
    assert snap.raw_status == raw


@pytest.mark.parametrize(
    ("ref", "body", "message"),
    [
        (DcsJob("j"), family_body("RUNNING", begin_time="2024-01-01T00:00:00Z"), "milliseconds"),
        (DcsJob("j"), family_body("RUNNING", begin_time=True), "milliseconds"),
        (DcsJob("j"), family_body("RUNNING", begin_time=False), "milliseconds"),
        (DcsJob("j"), family_body("RUNNING", end_time="-1684191545379"), "milliseconds"),
        (DcsJob("j"), family_body("RUNNING", end_time="9" * 16), "milliseconds"),
        (EcsJob("j"), family_body("RUNNING", begin_time=1684191545379), "must be a string"),
        (ImsJob("j"), family_body("RUNNING", entities={"process_percent": "1%"}), "number"),
        (ImsJob("j"), family_body("RUNNING", entities={"sub_jobs_result": {}}), "array"),
        (EcsJob("j"), family_body("RUNNING", entities={"sub_jobs": "x"}), "array"),
        (
            EcsJob("j"),
            family_body("RUNNING", entities={"sub_jobs": [family_body("INIT", "../x")]}),
            "bad job_id",
        ),
        (SdrsJob("j"), {"job_id": "j"}, "status"),
        (BmsJob("j"), ["SUCCESS"], "JSON object"),
    ],
)
def test_bad_bodies_are_response_validation_errors(ref: Any, body: Any, message: str) -> None:
    with pytest.raises(ResponseValidationError, match=message):
        parse_snapshot(ref, body)


def test_ims_ignores_a_sub_jobs_key_it_does_not_use() -> None:
    body = family_body("RUNNING", entities={"sub_jobs": [family_body("INIT", "s")]})
    assert parse_snapshot(ImsJob("j"), body).sub_jobs == ()
    assert len(parse_snapshot(EcsJob("j"), body).sub_jobs) == 1


def test_a_sub_job_without_id_is_a_placeholder_of_the_service() -> None:
    body = family_body("RUNNING", entities={"sub_jobs": [{"status": "INIT"}]})
    (sub,) = parse_snapshot(SdrsJob("top"), body).sub_jobs
    assert sub.ref == SdrsJob("top.sub_jobs.0")


# -- the simulator -------------------------------------------------------------------------------


def steps(events: list[Event], ref: Any) -> list[tuple[Any, Any]]:
    return [(e.previous, e.state) for e in events if e.ref == ref and isinstance(e, Transition)]


@pytest.mark.anyio
@pytest.mark.parametrize("name", FAMILY)
async def test_each_service_job_moves_through_the_simulator(name: str) -> None:
    ref_type, _ = FAMILY[name]
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        P,
        "job-1",
        [(0, "INIT"), (1, "RUNNING"), (2, "FAIL")],
        service=svc(name),
        entities=ENTITIES[name],
        fail_reason="no capacity",
    )
    ref = ref_type("job-1")
    events = await lockstep(sim, client_for(sim), [ref], [1, 2], FAST)
    assert steps(events, ref) == [(None, PENDING), (PENDING, RUNNING), (RUNNING, FAILED)]
    last = events[-1]
    assert isinstance(last, Transition)
    assert type(last.snapshot.ref) is ref_type
    assert last.snapshot.fail_reason == "no capacity"
    assert last.snapshot.end_time is not None
    if name == "dcs":  # DCS sends no entities
        assert last.snapshot.entities is None
    else:
        assert last.snapshot.entities == ENTITIES[name]
    paths = {r.path for r in sim.requests}
    assert paths == {FAMILY[name][1].removesuffix("/j") + "/job-1"}


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "key"), [("ecs", "sub_jobs"), ("ims", "sub_jobs_result")])
async def test_sub_jobs_come_out_as_the_services_refs(name: str, key: str) -> None:
    ref_type = FAMILY[name][0]
    sim = Simulator(clock=ManualClock())
    subs = [
        SubJob("sub-ok", [(0, "RUNNING"), (1, "SUCCESS")], entities=ENTITIES[name]),
        SubJob("sub-bad", [(0, "RUNNING"), (2, "FAIL")], appear_at=1, errorcode_message="quota"),
    ]
    sim.add_evs_job(P, "batch", [(0, "RUNNING"), (2, "SUCCESS")], service=svc(name), sub_jobs=subs)
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as raw:
        sim.clock.set(2)
        body = (await raw.get(f"/v1/{P}/jobs/batch")).json()
    assert [s["job_id"] for s in body["entities"][key]] == ["sub-ok", "sub-bad"]
    assert ("sub_jobs_total" in body["entities"]) is (name == "ecs")
    sim.clock.set(0)
    sim.clear_requests()
    events = await lockstep(sim, client_for(sim), [ref_type("batch")], [1, 2], FAST)
    sub_refs = {e.ref for e in events if e.parent is not None}
    assert sub_refs == {ref_type("sub-ok"), ref_type("sub-bad")}
    assert all(type(r) is ref_type for r in sub_refs)
    bad = [e for e in events if e.ref == ref_type("sub-bad") and e.final]
    assert isinstance(bad[0], Transition)
    assert bad[0].state is FAILED
    # a listed sub-job answers on its own path too
    async with client_for(sim) as client:
        assert (await client.fetch(ref_type("sub-ok"))).state is SUCCEEDED


@pytest.mark.anyio
@pytest.mark.parametrize("name", FAMILY)
async def test_a_missing_job_is_job_not_found(name: str) -> None:
    ref_type, path = FAMILY[name]
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "other", [(0, "RUNNING")], service=svc(name))
    async with client_for(sim) as client:
        with pytest.raises(JobNotFound):
            await client.fetch(ref_type("j"))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as raw:
        response = await raw.get(path, headers={"X-Project-Id": P})
    assert response.status_code == 400
    body = response.json()
    if name == "dcs":  # DCS's documented error body
        assert body == {
            "error_msg": body["error_msg"],
            "error_code": "Common.0011",
            "error_ext_msg": None,
        }
    elif name in ("ecs", "bms", "vpc", "sdrs"):
        assert body["code"] == "Common.0011"
        assert "not found" in body["message"]
    else:
        assert body["error"]["code"] == "Common.0011"


@pytest.mark.anyio
async def test_an_endpoint_serves_only_its_services_paths() -> None:
    ecs = Simulator(clock=ManualClock())
    ecs.add_evs_job(P, "e", [(0, "RUNNING")], service="ecs")
    with pytest.raises(ValueError, match="ecs endpoint"):
        ecs.add_evs_job(P, "d", [(0, "RUNNING")], service="dcs")
    with pytest.raises(ValueError, match="service must be one of"):
        ecs.add_evs_job(P, "x", [(0, "RUNNING")], service="cce")  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=ecs.transport(), base_url="http://sim") as raw:
        for path in (f"/v2/{P}/jobs/e", "/v1/cloudimages/job/e"):
            response = await raw.get(path)
            assert response.status_code == 404
            assert response.json()["error_code"] == "APIGW.0101"
        assert (await raw.get(f"/v1/{P}/jobs/e")).json()["status"] == "RUNNING"
    # EVS's endpoint holds v1 and v2 jobs, each on its own path only
    evs = Simulator(clock=ManualClock())
    evs.add_evs_job(P, "one", [(0, "RUNNING")])
    evs.add_evs_job(P, "two", [(0, "SUCCESS")], service="evs-v2")
    async with client_for(evs) as client:
        assert (await client.fetch(EvsJob("one"))).state is RUNNING
        assert (await client.fetch(EvsV2Job("two"))).state is SUCCEEDED
        for wrong in (EvsJob("two"), EvsV2Job("one")):
            with pytest.raises(JobNotFound):
                await client.fetch(wrong)


@pytest.mark.anyio
async def test_ims_jobs_answer_on_both_paths_the_newer_one_by_header() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(
        P, "img", [(0, "RUNNING")], service="ims-cloudimages", entities={"process_percent": 0.5}
    )
    async with client_for(sim) as client:
        old = await client.fetch(ImsJob("img"))
        new = await client.fetch(ImsCloudImagesJob("img"))
    assert old.state is new.state is RUNNING
    assert new.progress == 0.5
    assert [r.path for r in sim.requests] == [f"/v1/{P}/jobs/img", "/v1/cloudimages/job/img"]
    assert sim.requests[1].headers["x-project-id"] == P
    assert sim.requests[1].api == "ims-cloudimages"
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as raw:
        assert (await raw.get("/v1/cloudimages/job/img")).status_code == 400  # no project
        other = await raw.get("/v1/cloudimages/job/img", headers={"X-Project-Id": "proj-2"})
        assert other.status_code == 400


@pytest.mark.anyio
async def test_dcs_over_a_socket_on_each_stack(on_stack: Callable[..., Client]) -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "d1", [(0, "INIT"), (1.5, "SUCCESS")], service="dcs")
    with serve(sim) as base_url:
        async with on_stack(base_url, retry=QUICK_RETRY) as client:
            first = await client.fetch(DcsJob("d1"))
            sim.clock.set(2)
            last = await client.fetch(DcsJob("d1"))
    assert first.state is PENDING
    assert first.begin_time is None
    assert last.state is SUCCEEDED
    assert last.end_time is not None
    assert last.begin_time is not None
    assert (last.end_time - sim.epoch).total_seconds() == 1.5
    assert set(last.raw) == {
        "job_id",
        "job_type",
        "status",
        "begin_time",
        "end_time",
        "fail_reason",
    }
    assert str(last.raw["end_time"]).isdigit()


# -- resume tokens -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_resume_token_of_mixed_family_refs_reads_back() -> None:
    sims: dict[str, Simulator[ManualClock]] = {}
    refs: list[Any] = []
    for name in ("evs", "ecs", "dcs", "ims", "sdrs"):
        sim = sims[name] = Simulator(clock=ManualClock())
        sub = SubJob(f"{name}-sub", [(0, "RUNNING")])
        subs = [] if name == "dcs" else [sub]
        sim.add_evs_job(P, f"{name}-1", [(0, "RUNNING")], service=svc(name), sub_jobs=subs)
        refs.append(FAMILY[name][0](f"{name}-1"))
    clients = {name: client_for(sim) for name, sim in sims.items()}
    async with Watcher(clients["evs"], policy=FAST) as watcher:
        for name, ref in zip(sims, refs, strict=True):
            watcher.watch(ref, client=clients[name])
        seen: set[Any] = set()
        with anyio.fail_after(10):
            async for event in watcher.events(until_idle=False):
                seen.add(event.ref)
                if len(seen) == 9:  # five jobs and four sub-jobs
                    break
        token = json.loads(json.dumps(watcher.export_state()))
    for client in clients.values():
        await client.aclose()
    jobs = load_state(token)
    assert [job.ref for job in jobs] == refs
    assert all(job.state is RUNNING for job in jobs)
    for job in jobs:
        for sub_ref, (parent, state, _) in job.subs.items():
            assert type(sub_ref) is type(job.ref)
            assert parent == job.ref
            assert state is RUNNING
    async with client_for(sims["ecs"]) as client, Watcher(client, policy=FAST) as again:
        assert again.resume(token) == len(refs)


@pytest.mark.anyio
async def test_faults_aim_at_a_family_service_and_answer_in_its_shape() -> None:
    sim = Simulator(clock=ManualClock())
    sim.add_evs_job(P, "e", [(0, "RUNNING")], service="ecs")
    sim.add_fault(Fault("http_500", api="evs", count=5))  # another service: never fires
    sim.add_fault(Fault("http_500", api="ecs", count=1, error_code="Ecs.0000"))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="http://sim") as raw:
        failed = await raw.get(f"/v1/{P}/jobs/e")
        assert failed.status_code == 500
        assert failed.json()["code"] == "Ecs.0000"  # ECS's flat error shape
        assert (await raw.get(f"/v1/{P}/jobs/e")).status_code == 200
    assert [r.api for r in sim.requests] == ["ecs", "ecs"]
    assert [r.fault for r in sim.requests] == ["http_500", None]


def test_a_scenario_makes_family_jobs() -> None:
    job = {"project_id": P, "job_id": "b", "timeline": [[0, "RUNNING"]], "service": "bms"}
    sim = Simulator.from_scenario({"evs_jobs": [job]})
    with pytest.raises(ValueError, match="bms endpoint"):
        sim.add_evs_job(P, "x", [(0, "RUNNING")], service="sdrs")
    with pytest.raises(ValueError, match="service must be one of"):
        Simulator.from_scenario({"evs_jobs": [{**job, "service": "BMS"}]})
