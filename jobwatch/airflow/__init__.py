"""jobwatch for Apache Airflow 3: a deferrable sensor whose triggers share one watcher.

Install the ``airflow`` extra (``pip install 'jobwatch[airflow]'``).  The
provider registers itself through the ``apache_airflow_provider`` entry point
(``airflow providers list`` shows ``jobwatch``).

- ``HuaweiCloudJobSensor`` (``jobwatch.airflow.sensors``): waits for a job,
  deferrable by default.
- ``HuaweiCloudJobTrigger`` (``jobwatch.airflow.triggers``): the wait in the
  triggerer; every trigger of one process that reaches the same endpoint,
  project and credentials shares one ``Client`` and one ``Watcher``.
- ``HuaweiCloudJobHook`` (``jobwatch.airflow.hooks``): the connection type
  ``jobwatch_huaweicloud`` (login = AK, password = SK, extra ``project_id``,
  ``region`` or ``endpoint``, ``security_token``, or ``token``).

Importing this package does not import Airflow; its classes are loaded on
first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobwatch.airflow.hooks import HuaweiCloudJobHook
    from jobwatch.airflow.sensors import HuaweiCloudJobSensor
    from jobwatch.airflow.triggers import HuaweiCloudJobTrigger

__all__ = [
    "HuaweiCloudJobHook",
    "HuaweiCloudJobSensor",
    "HuaweiCloudJobTrigger",
    "get_provider_info",
]

_LAZY = {
    "HuaweiCloudJobHook": "jobwatch.airflow.hooks",
    "HuaweiCloudJobSensor": "jobwatch.airflow.sensors",
    "HuaweiCloudJobTrigger": "jobwatch.airflow.triggers",
}

_INTEGRATION = "Huawei Cloud jobs"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


def _modules(kind: str) -> dict[str, Any]:
    return {"integration-name": _INTEGRATION, "python-modules": [f"jobwatch.airflow.{kind}"]}


def _field(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def get_provider_info() -> dict[str, Any]:
    """The provider's description, as Airflow's ``apache_airflow_provider`` entry point wants it."""
    from jobwatch import __version__

    return {
        "package-name": "jobwatch",
        "name": "jobwatch",
        "description": "Watch the asynchronous jobs of Huawei Cloud services: a deferrable "
        "sensor whose triggers share one client and one watcher per triggerer.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "tags": ["service"],
            }
        ],
        "sensors": [_modules("sensors")],
        "triggers": [_modules("triggers")],
        "hooks": [_modules("hooks")],
        "connection-types": [
            {
                "connection-type": "jobwatch_huaweicloud",
                "hook-class-name": "jobwatch.airflow.hooks.HuaweiCloudJobHook",
                "hook-name": "Huawei Cloud (jobwatch)",
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "port"],
                    "relabeling": {"login": "Access Key ID", "password": "Secret Access Key"},
                },
                "conn-fields": {
                    "project_id": _field("Project ID", "The project the jobs belong to."),
                    "region": _field("Region", "Builds the endpoint, as cn-north-4."),
                    "endpoint": _field("Endpoint", "An explicit endpoint, as https://host."),
                    "security_token": _field(
                        "Security token", "With a temporary AK/SK.", secret=True
                    ),
                    "token": _field("IAM token", "Instead of AK/SK.", secret=True),
                },
            }
        ],
    }
