"""The start-up figures of the ``cpu`` scenario: how soon the CLI sends its first request.

Each figure is the wall time from ``Popen`` of a child interpreter to:

- ``baseline``: the exit of ``python -c "import aiohttp, pydantic"`` (what any
  aiohttp client that validates JSON with pydantic pays before its first request);
- ``first_request``: the first bytes of a request reaching a socket the harness
  listens on, sent by ``python -m jobwatch watch --api evs --json ...`` (the child is
  killed then: what comes after is not start-up);
- ``help``: the exit of ``python -m jobwatch --help``;
- ``bare``: the exit of ``python -c pass`` (the interpreter alone).

The children run as an installed CLI does: with compiled bytecode.  pip compiles
a package's modules when it installs it, but this tree runs from source and the
sandbox sets ``PYTHONDONTWRITEBYTECODE``, so each start would compile all of
jobwatch (and none of aiohttp or pydantic, installed with their bytecode): about
0.1 s measured here, a cost no user pays.  The children get a private
``PYTHONPYCACHEPREFIX`` and every variant runs once, uncounted, to fill it.

The variants run in turn, ``repeats`` times, so that drift on a shared machine
falls on all of them; the medians are reported and the target is
first_request / baseline <= 1.5.  ``python -X importtime -m jobwatch --help`` shows
what a command imports.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks._common import PROJECT, job_id

Result = dict[str, Any]
TARGET = 1.5
VARIANTS = ("bare", "baseline", "help", "first_request")


def _env(pycache: str) -> dict[str, str]:
    from benchmarks.harness import child_env

    env = child_env()
    for key in list(env):
        if key.startswith(("JOBWATCH_", "HUAWEICLOUD_")):
            del env[key]
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = pycache
    return env


def _until_exit(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, timeout=60, check=False
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[1:]} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def _until_first_request(env: dict[str, str]) -> float:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(60)
        port = listener.getsockname()[1]
        argv = [
            sys.executable, "-m", "jobwatch", "watch", "--api", "evs", "--json",
            "--endpoint", f"http://127.0.0.1:{port}", "--project-id", PROJECT,
            "--token", "bench-token-not-checked", job_id(0),
        ]  # fmt: skip
        started = time.perf_counter()
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        try:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(60)
                if not connection.recv(1):
                    raise RuntimeError("jobwatch watch connected and sent nothing")
                elapsed = time.perf_counter() - started
        finally:
            child.kill()
            child.wait()
    return elapsed


def measure(repeats: int) -> Result:
    """Every variant ``repeats`` times, in turn, after one uncounted round that
    compiles the bytecode; the medians, every try, and the ratio."""
    with tempfile.TemporaryDirectory(prefix="jobwatch-bench-pycache-") as pycache:
        runs = _rounds(_env(pycache), repeats)
    medians = {name: statistics.median(times) for name, times in runs.items()}
    return {
        "repeats": repeats,
        "median_s": medians,
        "tries_s": runs,
        "first_request/baseline": medians["first_request"] / medians["baseline"],
        "help/baseline": medians["help"] / medians["baseline"],
        "loadavg": os.getloadavg(),
    }


def _rounds(env: dict[str, str], repeats: int) -> dict[str, list[float]]:
    py = sys.executable
    runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(1 + repeats):
        runs["bare"].append(_until_exit([py, "-c", "pass"], env))
        runs["baseline"].append(_until_exit([py, "-c", "import aiohttp, pydantic"], env))
        runs["help"].append(_until_exit([py, "-m", "jobwatch", "--help"], env))
        runs["first_request"].append(_until_first_request(env))
    return {name: times[1:] for name, times in runs.items()}  # the first round compiled


if __name__ == "__main__":
    import json

    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 5), indent=2))
