"""The writer the settings and the warehouse call for."""

from __future__ import annotations

from data_plane.ingest.batch_writer import BatchWriter
from data_plane.ingest.dead_letters import DeadLetters
from data_plane.ingest.decoder_pool import DecoderPool
from data_plane.ingest.engine_writer import EngineBatchWriter
from data_plane.ingest.python_writer import PythonBatchWriter
from data_plane.settings import DataPlaneSettings
from data_plane.warehouse.event_sink import EventSink


def batch_writer(
    settings: DataPlaneSettings, sink: EventSink, dead_letters: DeadLetters
) -> BatchWriter:
    """The engine's writer where the warehouse's engine decodes and the settings let it;
    else Python decoding on `ingest_decode_workers` processes."""
    if settings.ingest_decode_in_engine and sink.writes_messages:
        return EngineBatchWriter(sink, dead_letters)
    return PythonBatchWriter(sink, dead_letters, DecoderPool(settings.ingest_decode_workers))
