"""Where each event lies in an encoded PublishEventsRequest, read from the protobuf wire
format: the request is its events, each as field 1 (tag, length, bytes), which is also
how an EventBatch holds them. So a group's bus message is the concatenation of its
events' spans, and an event's size is its span's length: no event is copied, encoded
again or measured (that was a third of the ingress's time per event).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Field 1, wire type 2 (length-delimited): the tag of every event in the request and
#: in an EventBatch.
EVENT_TAG = 0x0A


#: (start, body, end): where an event's tag is, where its own bytes begin, and where they
#: end. A plain tuple: a named one took as long to make as the rest of the reading.
Span = tuple[int, int, int]


def event_spans(request: bytes) -> list[Span] | None:
    """Each event's span, in order; None when the request holds anything else (another
    field, a truncated event), for the caller to take the slow path the parser judges."""
    spans: list[Span] = []
    append = spans.append
    end_of_request = len(request)
    position = 0
    try:
        while position < end_of_request:
            if request[position] != EVENT_TAG:
                return None
            start = position
            byte = request[position + 1]
            position += 2
            length = byte & 0x7F
            shift = 7
            while byte & 0x80:
                if shift > 28:  # lengths past 2**32 are no event's
                    return None
                byte = request[position]
                position += 1
                length |= (byte & 0x7F) << shift
                shift += 7
            body = position
            position += length
            if position > end_of_request:
                return None
            append((start, body, position))
    except IndexError:  # the request ends inside a tag or a length
        return None
    return spans


def joined(request: bytes, spans: Sequence[Span], indexes: Sequence[int]) -> bytes:
    """The events at `indexes`, as an encoded EventBatch."""
    view = memoryview(request)
    return b"".join([view[spans[i][0] : spans[i][2]] for i in indexes])
