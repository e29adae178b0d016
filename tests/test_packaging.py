"""The package as published: the wheel's contents and metadata, one version, the pytest plugin.

The wheel is built once (``pip wheel --no-deps``, which fetches the build backend,
hatchling, into an isolated environment); where that is impossible (offline, no
cached hatchling) the wheel tests skip, saying why.  The plugin tests run pytest in
a subprocess with the entry point this project declares installed, as pip would.
"""

from __future__ import annotations

import email.parser
import email.policy
import os
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from configparser import ConfigParser
from email.message import Message
from pathlib import Path

import pytest

import jobwatch
import jobwatch.testing
from jobwatch import Client, EvsJob
from jobwatch.sim import Simulator, serve

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
#: Seconds the build may take (it usually takes two: hatchling comes from pip's cache).
BUILD_TIMEOUT = 120
#: What pip says when it cannot get the build backend: no network, no cached copy.
CANNOT_FETCH = (
    "No matching distribution",
    "Could not find a version",
    "NewConnectionError",
    "Network is unreachable",
    "Temporary failure in name resolution",
    "Failed to establish a new connection",
    "ConnectTimeoutError",
    "ReadTimeoutError",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("dist")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out)]
    command += ["--quiet", str(ROOT)]
    # Also for the pip that installs the build backend: fail fast when offline.
    env = {**os.environ, "PIP_DEFAULT_TIMEOUT": "10", "PIP_RETRIES": "0"}
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter, our own tree
            command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        pytest.skip(
            f"building the wheel took over {BUILD_TIMEOUT} s (offline, no cached hatchling?)"
        )
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines()]
        offline = [line for line in said if any(sign in line for sign in CANNOT_FETCH)]
        if offline:
            pytest.skip(f"cannot build the wheel here, no build backend: {offline[-1][:200]}")
        pytest.fail(f"pip wheel failed:\n{done.stderr}")
    (built,) = out.glob("jobwatch-*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def dist_info(wheel: zipfile.ZipFile) -> str:
    (name,) = {n.split("/")[0] for n in wheel.namelist() if n.split("/")[0].endswith(".dist-info")}
    return name


def metadata(wheel: zipfile.ZipFile) -> Message:
    text = wheel.read(f"{dist_info(wheel)}/METADATA").decode()
    return email.parser.Parser(policy=email.policy.compat32).parsestr(text)


def entry_points(wheel: zipfile.ZipFile) -> dict[str, dict[str, str]]:
    parser = ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(wheel.read(f"{dist_info(wheel)}/entry_points.txt").decode())
    return {section: dict(parser[section]) for section in parser.sections()}


# -- the wheel ------------------------------------------------------------------------------------


def test_the_wheel_ships_the_license_and_py_typed(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    license_text = wheel.read(f"{dist_info(wheel)}/licenses/LICENSE").decode()
    assert license_text == (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text  # the full text, not a notice
    assert "jobwatch/py.typed" in names


def test_the_wheel_has_every_module_and_nothing_else(wheel: zipfile.ZipFile) -> None:
    source = {
        path.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "*.json")  # code, and data such as the CLI's JSON Schema
        for path in (ROOT / "jobwatch").rglob(pattern)
        if "__pycache__" not in path.parts
    }
    shipped = {name for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert shipped == source | {"jobwatch/py.typed"}


def test_the_metadata(wheel: zipfile.ZipFile) -> None:
    meta = metadata(wheel)
    assert meta["Name"] == "jobwatch"
    assert meta["Version"] == jobwatch.__version__
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == ">=3.11"
    classifiers = set(meta.get_all("Classifier") or [])
    assert {
        "Development Status :: 3 - Alpha",
        "Framework :: AnyIO",
        "Framework :: Trio",
        "Typing :: Typed",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    } <= classifiers
    # PEP 639: with a license expression, license classifiers are deprecated.
    assert not [c for c in classifiers if c.startswith("License ::")]
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"cli", "sim", "fast", "trio", "testing", "otel", "prometheus"} <= extras
    requires = meta.get_all("Requires-Dist") or []
    assert any(r.startswith("opentelemetry-api") and "extra == 'otel'" in r for r in requires)
    assert any(r.startswith("prometheus-client") and "extra == 'prometheus'" in r for r in requires)
    assert any(r.startswith("pytest") and "extra == 'testing'" in r for r in requires)
    assert any(r.startswith("trio") and "extra == 'trio'" in r for r in requires)
    assert meta.get_payload()  # the README, as the long description


def test_the_entry_points(wheel: zipfile.ZipFile) -> None:
    points = entry_points(wheel)
    assert points["console_scripts"] == {"jobwatch": "jobwatch._cli:main"}
    # Named as the module, so that a conftest's pytest_plugins = ["jobwatch.testing"]
    # finds the plugin already loaded (and does not register it twice).
    assert points["pytest11"] == {"jobwatch.testing": "jobwatch.testing"}


# -- one version ----------------------------------------------------------------------------------


def test_one_version_source() -> None:
    assert "version" not in PYPROJECT["project"]
    assert "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["hatch"]["version"]["path"] == "jobwatch/_version.py"
    namespace: dict[str, object] = {}
    exec((ROOT / "jobwatch" / "_version.py").read_text(encoding="utf-8"), namespace)  # noqa: S102
    assert namespace["__version__"] == jobwatch.__version__


@pytest.mark.anyio
async def test_the_user_agent_carries_the_version() -> None:
    sim = Simulator()
    sim.add_evs_job("p", "j", [(0, "RUNNING")])
    async with Client("http://sim.test", "p", transport=sim.transport()) as client:
        await client.fetch(EvsJob("j"))
    with serve(sim) as url:
        async with Client(url, "p") as client:  # the default stack (aiohttp on asyncio)
            await client.fetch(EvsJob("j"))
    agents = {request.headers["user-agent"] for request in sim.requests}
    assert agents == {f"jobwatch/{jobwatch.__version__}"}


# -- the pytest plugin, installed -----------------------------------------------------------------


@pytest.fixture
def installed(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester whose subprocess sees the pytest11 entry point declared in pyproject.toml."""
    site = pytester.mkdir("site")
    info = site / "jobwatch_plugin_probe-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: jobwatch-plugin-probe\nVersion: 0\n", encoding="utf-8"
    )
    declared = PYPROJECT["project"]["entry-points"]["pytest11"]
    lines = ["[pytest11]"] + [f"{name} = {value}" for name, value in declared.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    # What pytest reads to find the plugin's package (as in an installed wheel's RECORD).
    (info / "RECORD").write_text(
        "jobwatch/__init__.py,,\njobwatch/testing.py,,\n", encoding="utf-8"
    )
    paths = [str(site), str(ROOT)]
    monkeypatch.setenv("PYTHONPATH", ":".join(paths))
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return pytester


USES_FIXTURES = """
import pytest

import jobwatch


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_waits(jobwatch_sim, jobwatch_client):
    jobwatch_sim.add_evs_job(jobwatch_client.project_id, "j1", [(0, "SUCCESS")])
    snapshot = await jobwatch.wait_for(jobwatch.EvsJob("j1"), client=jobwatch_client, timeout=5)
    assert snapshot.state is jobwatch.JobState.SUCCEEDED
"""

USES_NOTHING = """
def test_plain(request):
    assert request.fixturenames == ["request"]  # no autouse fixture came along
"""


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", *args)


def test_installed_the_fixtures_need_no_conftest(installed: pytest.Pytester) -> None:
    installed.makepyfile(test_user=USES_FIXTURES)
    run(installed, "-q").assert_outcomes(passed=1)


def test_a_conftest_naming_the_plugin_too_changes_nothing(installed: pytest.Pytester) -> None:
    installed.makeconftest('pytest_plugins = ["jobwatch.testing"]\n')
    installed.makepyfile(test_user=USES_FIXTURES)
    run(installed, "-q").assert_outcomes(passed=1)


def test_a_run_that_asks_for_no_fixture_is_unchanged(installed: pytest.Pytester) -> None:
    installed.makepyfile(test_plain=USES_NOTHING)
    run(installed, "-q").assert_outcomes(passed=1)
    with_plugin = run(installed, "--help")
    without = run(installed, "--help", "-p", "no:jobwatch.testing")
    assert with_plugin.ret == without.ret == 0
    assert with_plugin.outlines == without.outlines  # no option, no ini key added
    assert [name for name in vars(jobwatch.testing) if name.startswith("pytest_")] == []


def test_the_plugin_can_be_turned_off(installed: pytest.Pytester) -> None:
    installed.makepyfile(test_user=USES_FIXTURES)
    result = run(installed, "-q", "-p", "no:jobwatch.testing")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'jobwatch_sim' not found*"])


def test_jobwatch_imported_before_pytest_starts_draws_no_rewrite_warning(
    installed: pytest.Pytester,
) -> None:
    # pytest marks the whole package of an entry-point plugin for assertion rewriting;
    # a package imported before that draws a PytestAssertRewriteWarning (an error
    # under -W error), but for its PYTEST_DONT_REWRITE marker.  (anyio, a plugin too,
    # draws one of its own: not ours to fix.)
    installed.makepyfile(test_user=USES_FIXTURES)
    # (``import jobwatch`` alone imports no submodule: ask for a name that does.)
    code = (
        "import sys, jobwatch; jobwatch.Watcher; import pytest; "
        "sys.exit(pytest.main(['-W', 'default', '-q']))"
    )
    result = installed.run(sys.executable, "-c", code)
    assert result.ret == 0, result.outlines
    result.stdout.fnmatch_lines(["*1 passed*"])
    output = result.stdout.str() + result.stderr.str()
    assert "cannot be rewritten; anyio" in output  # the check would see one
    assert "cannot be rewritten; jobwatch" not in output


def test_importing_jobwatch_imports_neither_opentelemetry_nor_prometheus() -> None:
    # jobwatch.otel and jobwatch.prometheus are opt-in: the package never imports them.
    code = (
        "import sys, jobwatch, jobwatch.testing, jobwatch.sim; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'opentelemetry', 'prometheus_client'} or m in {'jobwatch.otel', 'jobwatch.prometheus'}))"
    )
    argv = [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)  # noqa: S603
    assert out.stdout.strip() == "[]"


def test_the_wheel_with_the_cli_extra_gives_a_working_command(
    wheel: zipfile.ZipFile, tmp_path: Path
) -> None:
    """``pip install 'jobwatch[cli]'`` from the built wheel, in a fresh virtualenv."""
    built = Path(str(wheel.filename))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)  # noqa: S603
    python = venv / "bin" / "python"
    done = subprocess.run(  # noqa: S603 - our interpreter and our wheel
        [str(python), "-m", "pip", "install", "--quiet", f"{built}[cli]"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        said = [line.strip() for line in done.stderr.splitlines()]
        if any(sign in line for line in said for sign in CANNOT_FETCH):
            pytest.skip(f"cannot install the wheel's dependencies here: {said[-1][:200]}")
        pytest.fail(f"pip install failed:\n{done.stderr}")
    helped = subprocess.run(  # noqa: S603
        [str(venv / "bin" / "jobwatch"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    commands = {
        line.split()[0] for line in helped.stdout.split("Commands:")[1].splitlines() if line.strip()
    }
    assert commands == {"demo", "list", "sim", "watch"}, helped.stdout
