"""Runs the pinpipe batch job daily on a Flink job server.

The original system ran its Databricks notebook daily from MWAA; this DAG
does the same for the Beam job. Each run is incremental: it processes only
the S3 objects the earlier runs have not (the output's manifest.json), so
the daily cost follows the new data.

Deploy (MWAA or any Airflow 2.x):
  1. Build the launcher for the Airflow workers' platform and put it on
     their PATH (MWAA: a startup script that copies it from S3):
         GOOS=linux GOARCH=amd64 go build -o pinpipe ./cmd/pinpipe
  2. Set the Airflow Variables below (Admin > Variables), e.g.
         pinpipe_input        s3://my-lake/raw
         pinpipe_output       s3://my-lake/clean
         pinpipe_flink_job_server  flink-jobserver.internal:8099
     and give the workers' role read on the input, read/write on the output.
  3. Copy this file into the DAGs folder (MWAA: the dags/ prefix of its bucket).
"""

from datetime import datetime, timedelta

from airflow import DAG
from airflow.models import Variable
from airflow.operators.bash import BashOperator

default_args = {
    "owner": "data-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=10),
}

with DAG(
    dag_id="pinpipe_batch_daily",
    description="Clean the day's Pinterest posts and recompute the eight insights",
    default_args=default_args,
    start_date=datetime(2024, 1, 1),
    schedule="@daily",
    catchup=False,
    max_active_runs=1,  # incremental runs must not overlap
    tags=["pinpipe", "beam", "flink"],
) as dag:
    BashOperator(
        task_id="batch_incremental",
        bash_command=(
            "pinpipe batch --incremental"
            " --runner=flink"
            " --endpoint={{ var.value.pinpipe_flink_job_server }}"
            " --environment_type=DOCKER"
            " --input={{ var.value.pinpipe_input }}"
            " --topic-prefix={{ var.value.get('pinpipe_topic_prefix', 'pinpipe') }}"
            " --output={{ var.value.pinpipe_output }}"
            " --log-level=info"
        ),
        execution_timeout=timedelta(hours=3),
    )
