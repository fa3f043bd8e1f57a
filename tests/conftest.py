"""Shared fixtures. Real servers are started here and stopped when the session ends."""

from tests.leak_guard import no_subprocess_left_running, no_task_left_pending

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.kafka",
    "tests.harness.chdb",
    "tests.harness.clickhouse_http",
    "tests.harness.binaries",
]

__all__ = ["no_subprocess_left_running", "no_task_left_pending"]
