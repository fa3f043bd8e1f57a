"""Why a bus message's events cannot be stored, in the words of the dead-letter header.
Both decodings name a message's problem with these, the Python one (`ingest/decoding.py`)
and the engine's (`engine_decoding.py`), checked in the same order, so a message is
dead-lettered alike whichever decoded it."""

from __future__ import annotations

NOT_EVENT_BATCH = "not an EventBatch"
EMPTY_BATCH = "empty EventBatch"
#: The events' tenant must be the one the message's tenant header names (bus/base.py).
FOREIGN_TENANT = "event tenant differs from the tenant_id header"
NO_PAYLOAD_OR_BAD_ID = "event without payload or with a malformed id"
#: The prefix of the problem of an id of the right length that is no UUID.
UNDECODABLE = "undecodable event"
