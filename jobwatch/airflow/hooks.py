"""The Huawei Cloud connection, as Airflow's hook of the connection type ``jobwatch_huaweicloud``.

Any connection with the field layout of the third-party Huawei Cloud provider
(type ``huaweicloud``) works too: the type is not checked, the fields are read
(see ``jobwatch.airflow._connection``).  The distinct type name keeps both
providers installable side by side: Airflow takes a connection type from one
provider only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from airflow.sdk import BaseHook

from jobwatch._refs import JobRef
from jobwatch.airflow._connection import target_from_connection
from jobwatch.airflow._hub import Target

__all__ = ["CONN_TYPE", "DEFAULT_CONN_ID", "HuaweiCloudJobHook"]

CONN_TYPE = "jobwatch_huaweicloud"
DEFAULT_CONN_ID = "huaweicloud_default"


class HuaweiCloudJobHook(BaseHook):  # type: ignore[misc]
    """Reads a Huawei Cloud connection: login = Access Key ID, password = Secret Access Key.

    Extra JSON: ``project_id`` (required), ``region`` or ``endpoint``, and
    optionally ``security_token`` (temporary AK/SK) or ``token`` (an IAM token
    instead of AK/SK).  The connection form's fields are declared in the
    provider's metadata (``get_provider_info``), as Airflow 3.2 and later want.
    """

    conn_name_attr: ClassVar[str] = "huaweicloud_conn_id"
    default_conn_name: ClassVar[str] = DEFAULT_CONN_ID
    conn_type: ClassVar[str] = CONN_TYPE
    hook_name: ClassVar[str] = "Huawei Cloud (jobwatch)"

    def __init__(self, huaweicloud_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.huaweicloud_conn_id = huaweicloud_conn_id

    def target(self, ref: JobRef, **overrides: Any) -> Target:
        """Where and as whom to watch ``ref`` (``BadConnection`` when the connection lacks it)."""
        conn = self.get_connection(self.huaweicloud_conn_id)
        return target_from_connection(conn, ref, **overrides)

    async def atarget(self, ref: JobRef, **overrides: Any) -> Target:
        """``target``, reading the connection without blocking the triggerer's loop."""
        conn = await self.aget_connection(self.huaweicloud_conn_id)
        # The synchronous extra_dejson would block the loop on a secret-masking call.
        read = getattr(conn, "aextra_dejson", None)
        extra = await read() if read is not None else conn.extra_dejson
        return target_from_connection(conn, ref, extra=extra, **overrides)
