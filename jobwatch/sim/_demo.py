"""The built-in demo scenario: a few hundred jobs across the four APIs, with faults."""

from __future__ import annotations

import random
from dataclasses import dataclass

from jobwatch._refs import EvsJob, GesEngineJob, GesJob, GesVersion, JobRef
from jobwatch.sim._clock import MonotonicClock
from jobwatch.sim._faults import Fault
from jobwatch.sim._jobs import SubJob
from jobwatch.sim._simulator import Simulator

__all__ = ["DemoScenario", "demo_scenario"]

DEMO_PROJECT = "demo-project"


@dataclass(frozen=True, slots=True)
class DemoScenario:
    """A simulator filled with demo jobs, and the references to watch."""

    simulator: Simulator[MonotonicClock]
    project_id: str
    refs: tuple[JobRef, ...]


def demo_scenario(
    *, jobs: int = 300, seed: int = 1, span: float = 20.0, clock: MonotonicClock | None = None
) -> DemoScenario:
    """Build the demo: ``jobs`` jobs ending within about ``span`` seconds.

    Most are EVS volume jobs; there is a batch job with nested sub-jobs (one of
    which fails), GES management jobs on v1.0 and v2 (a failing import and a
    partly failed one), a graph of engine jobs, throttling with and without
    Retry-After, transient 5xx, HTML 503s, malformed bodies and jobs that become
    visible late.  ``clock``: the simulator's clock (default: real time from now).
    """
    rng = random.Random(seed)
    sim = Simulator(seed=seed, clock=clock or MonotonicClock())
    p = DEMO_PROJECT
    refs: list[JobRef] = []

    def timeline(statuses: tuple[str, str, str], *, fail: bool = False) -> list[tuple[float, str]]:
        start = rng.uniform(0.2, span * 0.3)
        end = start + rng.uniform(1.0, span * 0.6)
        return [(0, statuses[0]), (start, statuses[1]), (end, statuses[2])]

    engine_count = max(jobs // 6, 4)
    ges_count = max(jobs // 10, 4)
    evs_count = max(jobs - engine_count - ges_count - 1, 1)

    for i in range(evs_count):
        failing = rng.random() < 0.05
        final = "FAIL" if failing else "SUCCESS"
        job_id = f"evs-{i:05d}"
        sim.add_evs_job(
            p,
            job_id,
            timeline(("INIT", "RUNNING", final)),
            entities={"volume_id": f"vol-{i:05d}"},
            fail_reason="insufficient capacity" if failing else None,
            error_code="EVS.2024" if failing else None,
            visible_after=rng.choice([0.0, 0.0, 0.0, 1.5]),
        )
        refs.append(EvsJob(job_id))

    leaves = [
        SubJob(
            f"batch-leaf-{n}",
            [(0, "RUNNING"), (4 + n, "FAIL" if n == 2 else "SUCCESS")],
            appear_at=1 + n,
            fail_reason="quota exceeded" if n == 2 else None,
        )
        for n in range(4)
    ]
    sim.add_evs_job(
        p,
        "evs-batch",
        [(0, "INIT"), (0.5, "RUNNING"), (span * 0.7, "SUCCESS")],
        job_type="batchCreateVolume",
        sub_jobs=[
            SubJob("batch-group-a", [(0, "RUNNING"), (9, "SUCCESS")], sub_jobs=leaves[:2]),
            SubJob(
                "batch-group-b", [(0, "RUNNING"), (10, "SUCCESS")], sub_jobs=leaves[2:], appear_at=2
            ),
        ],
    )
    refs.append(EvsJob("evs-batch"))

    partly = {
        "schema_path": [{"path": "obs://demo/schema.xml", "status": "success"}],
        "edgeset_path": [
            {
                "path": "obs://demo/edges.csv",
                "status": "partFailed",
                "cause": "12 malformed lines",
                "total_lines": 5000,
                "failed_lines": 12,
                "successful_lines": 4988,
            }
        ],
        "vertexset_path": [{"path": "obs://demo/vertices.csv", "status": "success"}],
    }
    for i in range(ges_count):
        job_id = f"ges-{i:04d}"
        version: GesVersion = "v1.0" if i % 2 else "v2"
        failing = i == 1
        sim.add_ges_job(
            p,
            "demo-graph",
            job_id,
            timeline(("pending", "running", "failed" if failing else "success")),
            job_name="ImportGraph",
            import_detail=partly if i == 0 else None,
            fail_reason="schema file not found" if failing else None,
            v1_body=("old", "flat", "wrapped")[i % 3],
        )
        refs.append(GesJob("demo-graph", job_id, version))

    for i in range(engine_count):
        job_id = f"engine-{i:04d}"
        sim.add_engine_job(p, "movies", job_id, timeline(("pending", "running", "complete")))
        refs.append(GesEngineJob("movies", job_id))

    # Random throttles of a gateway whose named limit the demo never reaches (a
    # client takes a named window as its ceiling: 200 per 5 minutes would slow it).
    sim.add_fault(
        Fault("throttle_429", probability=0.02, retry_after=1, throttle_period="1 second")
    )
    sim.add_fault(Fault("throttle_429", probability=0.01, throttle_period="1 second"))
    sim.add_fault(Fault("http_500", probability=0.02))
    sim.add_fault(Fault("http_503_html", probability=0.01))
    sim.add_fault(Fault("malformed_json", probability=0.01))
    sim.add_fault(Fault("latency", probability=0.02, latency=0.3))
    return DemoScenario(simulator=sim, project_id=p, refs=tuple(refs))
