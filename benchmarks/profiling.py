"""Profile one contender's client process: ``python -m benchmarks.profiling``.

Starts the simulator server like the harness does, runs the contender (default:
``jobwatch`` at N=10,000 with the harness's settings) under ``py-spy record``
(sampling, native speed; on-CPU samples only), keeps the collapsed stacks, and
prints where the client's CPU goes: by package, and the top functions by self
and inclusive samples.  Needs ``py-spy`` (``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks._common import Scenario
from benchmarks.harness import ROOT, Config, Server, child_env

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_PACKAGES = (
    "jobwatch",
    "httpx_aiohttp",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "aiohttp",
    "pydantic_core",
    "pydantic",
    "backoff",
    "sniffio",
    "benchmarks",
)


def package_of(path: str) -> str:
    """The package a frame's file belongs to (``asyncio``, ``stdlib`` or a distribution)."""
    parts = Path(path).parts
    for name in _PACKAGES:
        if name in parts:
            return name
    if "asyncio" in parts:
        return "asyncio"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    return "stdlib/other"


def summarize(collapsed: Path, top: int = 25) -> str:
    """Where the samples in a py-spy ``raw`` (collapsed stacks) file went."""
    self_by_func: Counter[str] = Counter()
    incl_by_func: Counter[str] = Counter()
    self_by_pkg: Counter[str] = Counter()
    incl_by_pkg: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for raw in stack.split(";"):
            match = _FRAME.match(raw)
            if match is None:
                frames.append((raw, "?"))
                continue
            file = match["file"]
            short = "/".join(Path(file).parts[-2:])
            frames.append((f"{match['func']} ({short})", package_of(file)))
        func, pkg = frames[-1]
        self_by_func[func] += count
        self_by_pkg[pkg] += count
        for name in {f for f, _ in frames}:
            incl_by_func[name] += count
        for name in {p for _, p in frames}:
            incl_by_pkg[name] += count
    if not total:
        return "no samples"

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    out = [f"{total} on-CPU samples", "", "by package (self / inclusive):"]
    for pkg, n in self_by_pkg.most_common():
        out.append(f"  {pct(n)}  {pct(incl_by_pkg[pkg])}  {pkg}")
    out += ["", f"top {top} functions by self samples:"]
    out += [f"  {pct(n)}  {func}" for func, n in self_by_func.most_common(top)]
    out += ["", f"top {top} functions by inclusive samples:"]
    out += [f"  {pct(n)}  {func}" for func, n in incl_by_func.most_common(top)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profiling", description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--contender", default="jobwatch", help="jobwatch, naive, sdk, floor...")
    parser.add_argument("--params", help="the contender's parameters as JSON (default: harness's)")
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "jobwatch-prof")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        print("py-spy is not installed: pip install py-spy", file=sys.stderr)
        return 2
    config = Config()
    scenario = Scenario("evs", args.n, config.a, config.b, config.seed)
    limit = config.b + config.time_limit_extra
    defaults = {
        "jobwatch": {"policy": config.policy, "time_limit": limit},
        "naive": {"interval": config.naive_interval, "time_limit": limit},
        "sdk": {"interval": config.sdk_interval, "time_limit": limit},
        "floor": {"inflight": 4, "requests": 5000, "warmup": 300, "transport": "httpx"},
    }
    params = json.loads(args.params) if args.params else defaults.get(args.contender, {})
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.contender}-{args.n}"
    collapsed = args.out / f"{stem}.collapsed.txt"
    with open(args.out / f"{stem}.log", "wb") as log:
        server = Server(scenario, log)
        try:
            command = [
                py_spy,
                "record",
                "--rate",
                str(args.rate),
                "--format",
                "raw",
                "--output",
                str(collapsed),
                "--",
                sys.executable,
                "-m",
                "benchmarks.contenders",
                args.contender,
                "--url",
                server.url,
                "--scenario",
                scenario.to_json(),
                "--params",
                json.dumps(params),
            ]
            done = subprocess.run(  # noqa: S603 - py-spy and our own interpreter
                command, stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=child_env(), check=False
            )
        finally:
            server.stop()
    result_lines = [line for line in done.stdout.decode().splitlines() if "BENCH-RESULT" in line]
    if result_lines:
        print(result_lines[-1])
    summary = summarize(collapsed)
    (args.out / f"{stem}.summary.txt").write_text(summary + "\n", encoding="utf-8")
    print(summary)
    print(f"\ncollapsed stacks: {collapsed} (flamegraph.pl or speedscope read them)")
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
