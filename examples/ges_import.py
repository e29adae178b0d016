"""Watch GES graph imports (management plane v2) and read their per-file import details.

An import (``POST /v2/{project_id}/graphs/{graph_id}/action?action_id=import-graph``)
answers with a job ID; its status (``GET /v2/{project_id}/graphs/{graph_id}/jobs/
{job_id}/status``) says ``success`` or ``failed`` for the job as a whole, and lists
in ``job_detail`` every schema, vertex and edge file with its status (``success``,
``failed``, ``partFailed``), cause, log and line counts.  GES may say ``success``
while some files failed or partly failed: ``snapshot.import_has_failures`` is True
then, and ``snapshot.import_detail.problems`` lists those files.

This example runs two imports in the simulator: one that succeeds with a partly
failed edge file (37 of 50000 lines refused), and one that fails for good
(``raise_on_failure=True`` turns it into ``jobwatch.JobFailed``).  It prints each
job's outcome, a table of its files and what needs attention::

    ges-v2:movies/import-0001: succeeded (GES status 'success'), 2024-01-01 00:00:00 to 00:00:01
      kind      status          total     failed  succeeded  path
      schema    success             -          -          -  obs://example/movies/schema.xml
      ...
      edges     partFailed      50000         37      49963  obs://example/movies/ratings.csv
    GES says success, but 1 of 5 files did not import completely:
      obs://example/movies/ratings.csv: 37 lines with an unknown label (log: obs://...)
    ges-v2:movies/import-0002: JobFailed: job ... ended failed: schema file not found
    ...
    1 of 1 files did not import completely:
      obs://example/movies/schema-v2.xml: file not found

Run it with ``python examples/ges_import.py`` (about two seconds).  Against the
cloud, point a client at your region's GES endpoint and watch the job IDs your
import calls answer with::

    client = jobwatch.Client(
        "https://ges.cn-north-4.myhuaweicloud.com",
        project_id,
        auth=jobwatch.AKSKAuth.from_env(),  # or jobwatch.TokenAuth(iam_token)
    )
    snapshot = await watcher.wait(jobwatch.GesJob(graph_id, job_id, "v2"))

(``GesJob(graph_id, job_id, "v1.0")`` reads the older API, whose bodies carry the
same details in camelCase.)
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

import jobwatch
from jobwatch.sim import MonotonicClock, Simulator

PROJECT = "example-project"
GRAPH = "movies"
BUCKET = "obs://example/movies"

PARTLY_FAILED_IMPORT: dict[str, Any] = {
    "schema_path": [{"path": f"{BUCKET}/schema.xml", "status": "success"}],
    "vertexset_path": [
        {"path": f"{BUCKET}/users.csv", "status": "success", "total_lines": 120000,
         "failed_lines": 0, "successful_lines": 120000},
        {"path": f"{BUCKET}/movies.csv", "status": "success", "total_lines": 9742,
         "failed_lines": 0, "successful_lines": 9742},
    ],
    "edgeset_path": [
        {"path": f"{BUCKET}/friends.csv", "status": "success", "total_lines": 80000,
         "failed_lines": 0, "successful_lines": 80000},
        {"path": f"{BUCKET}/ratings.csv", "status": "partFailed",
         "cause": "37 lines with an unknown label", "log": f"{BUCKET}/logs/ratings.log",
         "total_lines": 50000, "failed_lines": 37, "successful_lines": 49963},
    ],
}  # fmt: skip
FAILED_IMPORT: dict[str, Any] = {
    "schema_path": [
        {"path": f"{BUCKET}/schema-v2.xml", "status": "failed", "cause": "file not found"}
    ],
}


def build_simulator() -> Simulator[MonotonicClock]:
    """Two import jobs of graph ``movies``: one partly failed, one failed."""
    sim = Simulator()
    sim.add_ges_job(
        PROJECT,
        GRAPH,
        "import-0001",
        [(0, "pending"), (0.2, "running"), (1.0, "success")],
        job_name="ImportGraph",
        import_detail=PARTLY_FAILED_IMPORT,
    )
    sim.add_ges_job(
        PROJECT,
        GRAPH,
        "import-0002",
        [(0, "pending"), (0.3, "running"), (0.6, "failed")],
        job_name="ImportGraph",
        import_detail=FAILED_IMPORT,
        fail_reason="schema file not found",
    )
    return sim


def count(value: int | None) -> str:
    """A line count, or ``-`` where GES did not return one."""
    return "-" if value is None else str(value)


def report(snapshot: jobwatch.JobSnapshot) -> None:
    """Print a job's outcome and its import detail, file by file."""
    begin = f"{snapshot.begin_time:%Y-%m-%d %H:%M:%S}" if snapshot.begin_time else "?"
    end = f"{snapshot.end_time:%H:%M:%S}" if snapshot.end_time else "?"
    print(
        f"{snapshot.ref}: {snapshot.state.value} (GES status {snapshot.raw_status!r}), "
        f"{begin} to {end}"
    )
    detail = snapshot.import_detail
    if detail is None:
        return
    print(f"  {'kind':<9} {'status':<11} {'total':>9} {'failed':>10} {'succeeded':>10}  path")
    for file in detail:
        print(
            f"  {file.kind:<9} {file.status or '?':<11} {count(file.total_lines):>9} "
            f"{count(file.failed_lines):>10} {count(file.successful_lines):>10}  {file.path}"
        )
    if snapshot.import_has_failures:
        files = list(detail)
        problems = detail.problems
        but = (
            f"GES says {snapshot.raw_status}, but "
            if snapshot.state is jobwatch.JobState.SUCCEEDED
            else ""
        )
        print(f"{but}{len(problems)} of {len(files)} files did not import completely:")
        for file in problems:
            log = f" (log: {file.log})" if file.log else ""
            print(f"  {file.path}: {file.cause or file.status}{log}")


async def main() -> int:
    sim = build_simulator()
    partly = jobwatch.GesJob(GRAPH, "import-0001", "v2")
    broken = jobwatch.GesJob(GRAPH, "import-0002", "v2")
    policy = jobwatch.PollPolicy(wait_initial=0.1, wait_max=0.5)
    async with (
        jobwatch.Client("https://ges.example", PROJECT, transport=sim.transport()) as client,
        jobwatch.Watcher(client, policy=policy, events=False) as watcher,
    ):
        watcher.watch_many([partly, broken])  # both are polled while we wait for the first
        with anyio.fail_after(30):
            report(await watcher.wait(partly))
            try:
                await watcher.wait(broken, raise_on_failure=True)
            except jobwatch.JobFailed as exc:
                print(f"{broken}: JobFailed: {exc}")
                report(exc.snapshot)
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
