"""The provider's metadata: the entry point, Airflow's schema, and what Airflow then lists."""

from __future__ import annotations

import json
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path

import airflow
import jsonschema

import jobwatch
from jobwatch.airflow import get_provider_info


def test_the_entry_point_names_get_provider_info() -> None:
    (found,) = [
        ep for ep in entry_points(group="apache_airflow_provider") if "jobwatch" in ep.value
    ]
    assert found.load() is get_provider_info


def test_the_provider_info_follows_airflows_schema_and_names_real_modules() -> None:
    info = get_provider_info()
    schema = json.loads(
        (Path(airflow.__file__).parent / "provider_info.schema.json").read_text(encoding="utf-8")
    )
    jsonschema.validate(info, schema)
    assert info["versions"] == [jobwatch.__version__]
    for section in ("sensors", "triggers", "hooks"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                import_module(module)
    (conn,) = info["connection-types"]
    module, _, name = conn["hook-class-name"].rpartition(".")
    hook = getattr(import_module(module), name)
    assert hook.conn_type == conn["connection-type"] == "jobwatch_huaweicloud"


def test_airflow_lists_the_provider_and_its_connection_type() -> None:
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    manager = ProvidersManager()
    assert "jobwatch" in manager.providers
    assert [t.package_name for t in manager.trigger if "jobwatch" in t.trigger_class_name] == [
        "jobwatch"
    ]
    behaviour = manager.field_behaviours["jobwatch_huaweicloud"]
    assert behaviour["relabeling"]["login"] == "Access Key ID"
    hook = ProvidersManagerTaskRuntime().hooks["jobwatch_huaweicloud"]
    assert hook is not None
    assert hook.hook_class_name == "jobwatch.airflow.hooks.HuaweiCloudJobHook"


def test_importing_jobwatch_airflow_imports_no_airflow_until_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, jobwatch, jobwatch.airflow; "
        "assert 'airflow' not in sys.modules, 'airflow imported'; "
        "jobwatch.airflow.HuaweiCloudJobSensor; assert 'airflow' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)  # noqa: S603
