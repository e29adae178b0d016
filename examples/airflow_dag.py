"""An Airflow DAG that waits for Huawei Cloud jobs with jobwatch's deferrable sensor.

Each sensor defers to the triggerer, where every trigger of the process shares
one client and one watcher.  The job IDs come from the run's parameters (as
they would from an upstream task's XCom), the endpoint, project and
credentials from the connection ``huaweicloud_default``.  The README's
"Airflow" section runs it against the simulator with ``airflow dags test``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from jobwatch.airflow import HuaweiCloudJobSensor

with DAG(
    "huaweicloud_jobs",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"volume_job": "vol-job-1", "batch_job": "batch-job-1"},
):
    HuaweiCloudJobSensor(
        task_id="wait_for_volume",
        job={"api": "evs", "job_id": "{{ params.volume_job }}"},
        timeout=600,
    )
    HuaweiCloudJobSensor(
        task_id="wait_for_batch",
        job={"api": "evs", "job_id": "{{ params.batch_job }}"},
        policy={"wait_initial": 0.5, "wait_max": 5},
        timeout=3600,
    )
