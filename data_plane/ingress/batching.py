"""Accepted events -> bus messages: one message per stream, keyed by the stream id.

Grouping per stream keeps each stream's events in one partition and in order, and puts
many events in one Kafka message (per-message overhead dominates at 100k+ events/s).
Node events, which have no stream, are keyed by their node id.
"""

from __future__ import annotations

from collections.abc import Sequence

from tidecast.events.v1 import events_pb2 as ev

from data_plane.bus.base import TENANT_HEADER, OutgoingMessage, kinds_header

#: Messages larger than this are split, so one stream's burst never exceeds the
#: broker's message size limit.
MAX_MESSAGE_EVENTS = 1000


def to_messages(events: Sequence[ev.Event]) -> list[OutgoingMessage]:
    """Accepted events (one tenant per stream, as the ingress checked) -> bus messages."""
    groups: dict[str, list[ev.Event]] = {}
    for event in events:
        key = event.stream_id or event.node_id
        group = groups.get(key)
        if group is None:
            groups[key] = [event]
        else:
            group.append(event)
    messages: list[OutgoingMessage] = []
    for key, group in groups.items():
        kinds = {event.WhichOneof("payload") or "" for event in group}
        headers = ((TENANT_HEADER, group[0].tenant_id.encode()), kinds_header(kinds - {""}))
        messages.extend(
            OutgoingMessage(key=key.encode(), value=value, headers=headers)
            for value in batch_values(group)
        )
    return messages


def batch_values(events: Sequence[ev.Event]) -> list[bytes]:
    """One group's events as serialized EventBatch values of at most MAX_MESSAGE_EVENTS."""
    return [
        ev.EventBatch(events=events[start : start + MAX_MESSAGE_EVENTS]).SerializeToString()
        for start in range(0, len(events), MAX_MESSAGE_EVENTS)
    ]
