"""Opens the bus and the warehouse the settings name: the one place that knows every
backend, so the rest of the data plane sees only the interfaces."""

from __future__ import annotations

from data_plane.bus.base import EventBus
from data_plane.settings import BusBackend, DataPlaneSettings, WarehouseBackend
from data_plane.warehouse.base import Warehouse


def open_bus(settings: DataPlaneSettings) -> EventBus:
    if settings.bus is BusBackend.KAFKA:
        from data_plane.bus.kafka import KafkaBus

        return KafkaBus(settings.kafka_bootstrap, linger_ms=settings.kafka_linger_ms)
    from data_plane.bus.memory import InProcessBus

    return InProcessBus()


def open_warehouse(settings: DataPlaneSettings) -> Warehouse:
    # Imported lazily: chDB costs about 260 MiB on import, and only one role needs it.
    if settings.warehouse is WarehouseBackend.CLICKHOUSE:
        from data_plane.warehouse.clickhouse_warehouse import ClickHouseWarehouse

        return ClickHouseWarehouse(settings.clickhouse_url)
    from data_plane.warehouse.chdb_warehouse import ChdbWarehouse

    return ChdbWarehouse(settings.chdb_path)
