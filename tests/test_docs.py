"""The README's runnable examples run as written and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
RUNNABLE = [b for b in BLOCKS if "anyio.run(main)" in b]


def test_the_readme_has_runnable_examples() -> None:
    assert RUNNABLE


@pytest.mark.parametrize("code", RUNNABLE)
def test_readme_example_runs_and_prints_what_it_says(code: str) -> None:
    # What a block prints is written as a comment on the print line, or as comment
    # lines right after the block that prints.
    expected: list[str] = []
    after_print = False
    for line in code.splitlines():
        stripped = line.strip()
        if "print(" in line:
            after_print = True
            if m := re.search(r"#\s*(.+)$", line):
                expected.append(m.group(1).strip())
        elif after_print and stripped.startswith("# "):
            expected.append(stripped[2:])
        elif stripped:
            after_print = False
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})  # noqa: S102
    assert out.getvalue().splitlines() == expected


@pytest.mark.anyio
async def test_the_readme_gc_recipe_registers_and_leaves_the_collector_on() -> None:
    import gc

    from jobwatch import Client, EvsJob, PollPolicy, Watcher
    from jobwatch.sim import Simulator

    (recipe,) = [b for b in BLOCKS if "gc.freeze()" in b]
    namespace: dict[str, object] = {}
    exec(compile(recipe, str(README), "exec"), namespace)  # noqa: S102
    register = namespace["register"]
    assert callable(register)
    sim = Simulator()
    refs = [EvsJob(f"job-{i}") for i in range(50)]
    for ref in refs:
        sim.add_evs_job("p", ref.job_id, [(0, "RUNNING")])
    policy = PollPolicy(wait_initial=600.0, wait_max=600.0)
    try:
        async with (
            Client("http://sim.test", "p", transport=sim.transport()) as client,
            Watcher(client, policy=policy, events=False) as watcher,
        ):
            await register(watcher, refs)
            assert gc.isenabled()
            assert gc.get_freeze_count() > 0
            assert watcher.statistics().jobs_watched == len(refs)
    finally:
        gc.unfreeze()


def test_the_readme_airflow_dag_is_the_example_file() -> None:
    """The DAG the README shows is examples/airflow_dag.py, which the orchestrator tests run."""
    example = (README.parent / "examples" / "airflow_dag.py").read_text(encoding="utf-8")
    body = example[example.index("from airflow.sdk import DAG") :]
    assert "from datetime import datetime\n\n" + body in README.read_text(encoding="utf-8")
