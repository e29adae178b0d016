"""API kinds: the registry, the JSON form of references, batches, and an API added from outside."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest

from jobwatch import (
    Client,
    EvsJob,
    GesEngineJob,
    GesJob,
    JobNotFound,
    JobRef,
    JobSnapshot,
    JobState,
    JobwatchError,
    ResponseValidationError,
    ServerError,
)
from jobwatch._client import RequestLedger, counting
from jobwatch._dialects import parse_snapshot
from jobwatch._dialects._evs import EvsKind
from jobwatch._exceptions import status_error
from jobwatch._kinds import (
    BatchResults,
    Requester,
    batch_group,
    kind_named,
    kind_of,
    kinds,
    register,
    validate_id,
)
from jobwatch._refs import ref_from_dict, ref_to_dict

P = "proj-1"


class FakeRequester:
    """A ``Requester`` answering from a table of paths; records what it was asked."""

    project_id = P

    def __init__(self, answers: Mapping[str, object]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, dict[str, str] | None]] = []

    async def get_json(self, path: str, params: Mapping[str, str] | None, *, what: str) -> Any:
        self.asked.append((path, dict(params) if params is not None else None))
        answer = self.answers[path]
        if isinstance(answer, JobwatchError):
            raise answer
        if callable(answer):
            return answer(params)
        return answer


# -- the registry and the JSON form -------------------------------------------------------------

REFS: list[JobRef] = [
    EvsJob("j1"),
    GesJob("g", "j2", "v1.0"),
    GesJob("g", "j3"),
    GesEngineJob("m", "e"),
]


def test_every_reference_has_its_kind() -> None:
    assert [kind_of(ref).name for ref in REFS] == ["evs", "ges", "ges", "ges-engine"]
    assert {"evs", "ges", "ges-engine"} <= {kind.name for kind in kinds()}
    for ref in REFS:
        kind = kind_of(ref)
        assert kind_named(kind.name) is kind
        assert isinstance(ref, kind.ref_type)
    assert kind_named("nope") is None
    with pytest.raises(TypeError, match="not a job reference"):
        kind_of("evs:j1")


def test_engine_jobs_share_requests_by_graph_and_ges_jobs_by_version() -> None:
    assert [kind_of(ref).batch_key(ref) for ref in REFS] == [None, "v1.0", "v2", "m"]
    assert [batch_group(ref) for ref in REFS] == [
        None,
        ("ges", "v1.0"),
        ("ges", "v2"),
        ("ges-engine", "m"),
    ]


def test_the_json_form_reads_back() -> None:
    assert [ref_to_dict(ref) for ref in REFS] == [
        {"api": "evs", "job_id": "j1"},
        {"api": "ges", "version": "v1.0", "graph_id": "g", "job_id": "j2"},
        {"api": "ges", "version": "v2", "graph_id": "g", "job_id": "j3"},
        {"api": "ges-engine", "graph_name": "m", "job_id": "e"},
    ]
    assert [ref_from_dict(ref_to_dict(ref)) for ref in REFS] == REFS
    assert ref_from_dict({"api": "ges", "graph_id": "g", "job_id": "j"}) == GesJob("g", "j", "v2")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["evs", "j"], "must be a JSON object"),
        ({"job_id": "j"}, "unknown job API 'None'"),
        ({"api": "sms", "job_id": "j"}, "unknown job API 'sms'"),
        ({"api": ["evs"], "job_id": "j"}, "unknown job API"),
        ({"api": "evs"}, "job_id must be a string"),
        ({"api": "evs", "job_id": "../x"}, "job_id"),
        ({"api": "ges", "graph_id": "g", "job_id": "j", "version": "v3"}, "version"),
        ({"api": "ges-engine", "graph_name": "", "job_id": "j"}, "graph_name must not be empty"),
    ],
)
def test_a_bad_json_form_is_a_value_error(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ref_from_dict(data)


def test_a_name_or_a_type_cannot_be_taken_twice() -> None:
    class Again(EvsKind):
        """Another kind of EVS jobs."""

    class Renamed(EvsKind):
        name = "evs-again"

    for kind in (Again(), Renamed()):
        with pytest.raises(ValueError, match="another API kind"):
            register(kind)
    assert kind_named("evs") is kind_of(EvsJob("j"))


# -- engine jobs: one list for a graph ----------------------------------------------------------

LIST = f"/ges/v1.0/{P}/graphs/m/jobs/status"


def engine_pages(*job_ids: str) -> Any:
    def answer(params: Mapping[str, str]) -> object:
        limit, offset = int(params["limit"]), int(params["offset"])
        page = job_ids[offset : offset + limit]
        return {"result": "success", "jobs": [{"jobId": j, "status": "running"} for j in page]}

    return answer


@pytest.mark.anyio
async def test_an_engine_batch_answers_exactly_its_members() -> None:
    requester = FakeRequester({LIST: engine_pages("e1", "e2", "e3")})
    kind = kind_of(GesEngineJob("m", "e1"))
    members = [GesEngineJob("m", "e3"), GesEngineJob("m", "gone"), GesEngineJob("m", "e3")]
    found = await kind.fetch_batch(requester, members)
    assert list(found) == [GesEngineJob("m", "e3"), GesEngineJob("m", "gone")]
    snapshot, missing = found.values()
    assert isinstance(snapshot, JobSnapshot)
    assert snapshot.ref == members[0]
    assert isinstance(missing, JobNotFound)
    assert "not in the job list of graph m" in str(missing)
    assert requester.asked == [(LIST, {"limit": "100000", "offset": "0"})]
    assert await kind.fetch_batch(requester, []) == {}
    assert len(requester.asked) == 1  # no members, no request
    with pytest.raises(ValueError, match="one graph"):
        await kind.fetch_batch(requester, [GesEngineJob("m", "e1"), GesEngineJob("n", "e1")])


@pytest.mark.anyio
async def test_a_failed_list_is_the_error_of_every_member() -> None:
    failure = status_error(500, None, body=b"down")
    requester = FakeRequester({LIST: failure})
    members = [GesEngineJob("m", "e1"), GesEngineJob("m", "e2")]
    found = await kind_of(members[0]).fetch_batch(requester, members)
    assert found == dict.fromkeys(members, failure)
    assert isinstance(failure, ServerError)


@pytest.mark.anyio
async def test_one_engine_job_is_asked_on_its_own_status_path() -> None:
    own = f"/ges/v1.0/{P}/graphs/m/jobs/e1/status"
    requester = FakeRequester({LIST: engine_pages("e1", "e2", "e3"), own: {"status": "running"}})
    kind = kind_of(GesEngineJob("m", "e1"))
    snapshot = await kind.fetch(requester, GesEngineJob("m", "e1"))
    assert snapshot.state is JobState.RUNNING
    (batched,) = (await kind.fetch_batch(requester, [GesEngineJob("m", "e1")])).values()
    assert batched == snapshot
    assert requester.asked == [(own, {"offset": "0", "limit": "1"})] * 2


def test_an_engine_jobs_snapshot_is_read_from_a_page_of_its_list() -> None:
    page = {"jobs": [{"jobId": "e1", "status": "complete"}]}
    assert parse_snapshot(GesEngineJob("m", "e1"), page).state is JobState.SUCCEEDED
    with pytest.raises(JobNotFound):
        parse_snapshot(GesEngineJob("m", "e2"), page)
    with pytest.raises(ResponseValidationError):
        parse_snapshot(GesEngineJob("m", "e1"), {"jobs": 3})
    # and from the body of its own status path
    assert parse_snapshot(GesEngineJob("m", "e1"), {"status": "running"}).state is JobState.RUNNING


@pytest.mark.anyio
async def test_a_direct_batch_is_one_request_per_job() -> None:
    body = {"status": "SUCCESS", "job_id": "a"}
    requester = FakeRequester({f"/v1/{P}/jobs/a": body, f"/v1/{P}/jobs/b": status_error(404, None)})
    found = await kind_of(EvsJob("a")).fetch_batch(requester, [EvsJob("a"), EvsJob("b")])
    assert isinstance(found[EvsJob("a")], JobSnapshot)
    assert isinstance(found[EvsJob("b")], JobNotFound)
    assert [path for path, _ in requester.asked] == [f"/v1/{P}/jobs/a", f"/v1/{P}/jobs/b"]


# -- an API added from outside: one module's worth ---------------------------------------------


@dataclass(frozen=True, slots=True)
class NoteJob:
    """A job of a made-up API whose jobs are listed per board (one GET per board)."""

    board: str
    job_id: str

    def __post_init__(self) -> None:
        validate_id("board", self.board)
        validate_id("job_id", self.job_id)


class NoteKind:
    name = "test-notes"
    ref_type = NoteJob
    graph_key = None  # (its board is no graph)

    def to_dict(self, ref: NoteJob) -> dict[str, str]:
        return {"api": self.name, "board": ref.board, "job_id": ref.job_id}

    def from_dict(self, data: Mapping[str, Any]) -> NoteJob:
        return NoteJob(data.get("board"), data.get("job_id"))  # type: ignore[arg-type]

    def batch_key(self, ref: NoteJob) -> str:
        return ref.board

    def parse(self, ref: NoteJob, data: object) -> JobSnapshot:
        status = cast(dict[str, str], data)[ref.job_id]
        state = JobState.SUCCEEDED if status == "done" else JobState.RUNNING
        return JobSnapshot(ref=cast(JobRef, ref), state=state, raw_status=status)

    async def fetch(self, requester: Requester, ref: NoteJob) -> JobSnapshot:
        result = (await self.fetch_batch(requester, [ref]))[ref]
        if isinstance(result, JobwatchError):
            raise result
        return result

    async def fetch_batch(
        self, requester: Requester, refs: Iterable[NoteJob]
    ) -> BatchResults[NoteJob]:
        members = list(dict.fromkeys(refs))
        board = members[0].board
        data = await requester.get_json(f"/notes/{board}", None, what=f"notes:{board}")
        results: BatchResults[NoteJob] = {}
        for ref in members:
            try:
                results[ref] = self.parse(ref, data)
            except KeyError:
                results[ref] = status_error(404, None, body=b"no such note")
        return results


register(NoteKind())


@pytest.mark.anyio
async def test_a_registered_api_is_grouped_fetched_and_counted_by_the_client() -> None:
    boards = {"/notes/x": {"n1": "done", "n2": "busy"}, "/notes/y": {"n3": "busy"}}
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path in boards:
            return httpx.Response(200, json={"status": "ok", **boards[request.url.path]})
        return httpx.Response(200, json={"status": "RUNNING", "job_id": "e"})

    refs = cast(
        list[JobRef],
        [
            NoteJob("x", "n1"),
            EvsJob("e"),
            NoteJob("y", "n3"),
            NoteJob("x", "n2"),
            NoteJob("x", "nope"),
        ],
    )
    ledger = RequestLedger()
    async with Client("http://x.test", P, transport=httpx.MockTransport(handler)) as client:
        with counting(ledger):
            results = await client.fetch_many(refs)
        single = await client.fetch(cast(JobRef, NoteJob("y", "n3")))
    assert [r.state if isinstance(r, JobSnapshot) else type(r) for r in results] == [
        JobState.SUCCEEDED,
        JobState.RUNNING,
        JobState.RUNNING,
        JobState.RUNNING,
        JobNotFound,
    ]
    assert [r.ref for r in results if isinstance(r, JobSnapshot)] == refs[:4]
    assert sorted(seen[:3]) == ["/notes/x", "/notes/y", f"/v1/{P}/jobs/e"]  # one per board
    assert ledger == RequestLedger(requests=3)
    assert single.raw_status == "busy"
    assert ref_from_dict(ref_to_dict(refs[2])) == refs[2]
