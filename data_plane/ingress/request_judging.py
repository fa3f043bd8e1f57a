"""A PublishEvents request judged whole, on a worker process: parsing, every check that
needs no I/O, and the accepted events grouped into bus message values. Pure; arguments
and result pickle.

What is left to the servicer's loop is per group, not per event: the duplicate memory
(set operations on the ids), the streams' owners (one directory lookup per stream,
`owned_groups`) and producing. An event's owner check cannot fail or pass within a group,
since a group is one stream of one tenant: the group is accepted or refused whole.

With no worker processes the servicer calls the same function on its loop: one flow.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from google.protobuf.message import DecodeError
from tidecast.events.v1 import events_pb2 as ev
from tidecast.events.v1 import ingress_pb2 as pb

from data_plane.ingress.batching import MAX_MESSAGE_EVENTS, batch_values
from data_plane.ingress.event_spans import Span, event_spans, joined
from data_plane.ingress.validation import Rejection, all_valid_ids, check_owner, check_shape


class Group(NamedTuple):
    """Accepted-shape events of one stream and tenant (or of the node: `stream_id` empty).
    (Named tuples: they cross the process boundary as plain tuples, which pickle several
    times faster than slotted dataclasses.)"""

    stream_id: str
    tenant_id: str
    #: Their indexes in the request, in order.
    indexes: list[int]
    #: Serialized EventBatch values, at most MAX_MESSAGE_EVENTS events each.
    values: list[bytes]
    #: The payload kinds of its events.
    kinds: frozenset[str]

    @property
    def node_scoped(self) -> bool:
        """Node events: `check_shape` accepts those only without a tenant and stream, and
        every other event only with both."""
        return not self.stream_id


class JudgedRequest(NamedTuple):
    #: The request is no PublishEventsRequest.
    malformed: bool = False
    #: The number of events when there are more than allowed (nothing else is judged).
    too_many: int = 0
    #: Every event's id, in request order.
    ids: Sequence[str] = ()
    #: Events repeating an id earlier in the request or one of the `known` ids (counted
    #: as duplicates).
    repeated: int = 0
    rejected: Sequence[tuple[int, Rejection]] = ()
    groups: Sequence[Group] = ()


def judge_request(
    request: bytes,
    node_id: str,
    now_ms: int,
    oldest_ms: int,
    max_events: int,
    known: Collection[str] = (),
) -> JudgedRequest:
    """The request judged; events whose ids are `known` (the ingress produced them
    already: a retry) count as duplicates and are left out of the groups."""
    try:
        events = pb.PublishEventsRequest.FromString(request).events
    except DecodeError:
        return JudgedRequest(malformed=True)
    if len(events) > max_events:
        return JudgedRequest(too_many=len(events))
    spans = event_spans(request)
    if spans is not None and len(spans) != len(events):
        spans = None
    ids = [e.event_id for e in events]
    seen: set[str] = set(known)
    repeated = 0
    rejected: list[tuple[int, Rejection]] = []
    members: dict[tuple[str, str], tuple[list[int], set[str]]] = {}
    unique = not seen and len(set(ids)) == len(ids)
    valid_ids = all_valid_ids(ids)
    for index, event in enumerate(events):
        if not unique:
            if ids[index] in seen:
                repeated += 1
                continue
            seen.add(ids[index])
        if spans is None:
            size = None
        else:
            _, body, end = spans[index]
            size = end - body
        rejection = check_shape(event, node_id, now_ms, oldest_ms, size, valid_id=valid_ids)
        if rejection is not None:
            rejected.append((index, rejection))
            continue
        key = (event.stream_id, event.tenant_id)
        kind = event.WhichOneof("payload") or ""  # never empty: check_shape refuses that
        member = members.get(key)
        if member is None:
            members[key] = ([index], {kind})
        else:
            member[0].append(index)
            member[1].add(kind)
    groups = [
        Group(
            stream_id,
            tenant_id,
            indexes,
            _values(request, spans, events, indexes),
            frozenset(kinds),
        )
        for (stream_id, tenant_id), (indexes, kinds) in members.items()
    ]
    return JudgedRequest(ids=ids, repeated=repeated, rejected=rejected, groups=groups)


def streams_to_resolve(judged: JudgedRequest) -> set[str]:
    """The streams whose owners decide the groups."""
    return {group.stream_id for group in judged.groups if not group.node_scoped}


def owned_groups(
    judged: JudgedRequest, owners: Mapping[str, str | None]
) -> tuple[list[Group], list[tuple[int, Rejection]]]:
    """The groups whose tenant owns their stream (`owners`: stream id -> owning tenant,
    None: unknown) and node groups, and every refused event (index, reason) in index
    order."""
    rejected = list(judged.rejected)
    accepted: list[Group] = []
    for group in judged.groups:
        if not group.node_scoped:
            rejection = check_owner(group.tenant_id, owners.get(group.stream_id))
            if rejection is not None:
                rejected.extend((index, rejection) for index in group.indexes)
                continue
        accepted.append(group)
    rejected.sort()
    return accepted, rejected


def _values(
    request: bytes,
    spans: list[Span] | None,
    events: Sequence[ev.Event],
    indexes: list[int],
) -> list[bytes]:
    """A group's EventBatch values: its events' bytes from the request as they came, or,
    when the request could not be read span by span, its events encoded again."""
    if spans is None:
        return batch_values([events[i] for i in indexes])
    return [
        joined(request, spans, indexes[start : start + MAX_MESSAGE_EVENTS])
        for start in range(0, len(indexes), MAX_MESSAGE_EVENTS)
    ]
