"""Shared fixtures. Real servers are started here and stopped when the session ends."""

pytest_plugins = [
    "tests.harness.postgres",
    "tests.harness.kafka",
    "tests.harness.chdb",
    "tests.harness.clickhouse_http",
]
