"""The engine's hooks, answered by the control plane and recorded in the spool.

Publishes fail closed: a key the control plane cannot confirm right now is refused. Streams
already live are never cut because the control plane went away; the engine keeps them.
"""

from __future__ import annotations

import logging

from tidecast.edge.v1 import edge_control_pb2 as pb

from edge_sidecar.control_client import ControlClient
from edge_sidecar.decision_cache import DecisionCache
from edge_sidecar.errors import ControlUnavailableError, CredentialRejectedError
from edge_sidecar.event_builder import build_event, client_ip
from edge_sidecar.metrics import EdgeMetrics
from edge_sidecar.spool import EventSpool, RecordClass
from media_plane.edge_engine import (
    EngineEvent,
    IngestHealth,
    MediaProtocol,
    PlayDecision,
    PlayDenial,
    PublishDecision,
    PublishDenial,
    PublishDenied,
    PublishGrant,
)

logger = logging.getLogger(__name__)

PUBLISH_DENIALS = {
    pb.PUBLISH_DENIAL_REASON_INVALID_KEY: PublishDenial.INVALID_KEY,
    pb.PUBLISH_DENIAL_REASON_STREAM_DISABLED: PublishDenial.STREAM_DISABLED,
    pb.PUBLISH_DENIAL_REASON_TENANT_SUSPENDED: PublishDenial.TENANT_SUSPENDED,
    pb.PUBLISH_DENIAL_REASON_QUOTA_EXCEEDED: PublishDenial.QUOTA_EXCEEDED,
    pb.PUBLISH_DENIAL_REASON_ALREADY_LIVE: PublishDenial.ALREADY_LIVE,
    pb.PUBLISH_DENIAL_REASON_NODE_DRAINING: PublishDenial.UNAVAILABLE,
}

PLAY_DENIALS = {
    pb.PLAY_DENIAL_REASON_UNKNOWN_STREAM: PlayDenial.UNKNOWN,
    pb.PLAY_DENIAL_REASON_TOKEN_REQUIRED: PlayDenial.TOKEN_REQUIRED,
    pb.PLAY_DENIAL_REASON_TENANT_SUSPENDED: PlayDenial.TENANT_SUSPENDED,
}


class SidecarHooks:
    """Implements media_plane.media.EngineHooks for the engine this sidecar hosts."""

    def __init__(
        self,
        control: ControlClient,
        spool: EventSpool,
        metrics: EdgeMetrics,
        *,
        node_id: str,
        ip_hash_salt: str,
        segment_duration_s: float,
        cache_max_s: float,
    ) -> None:
        self._control = control
        self._spool = spool
        self._metrics = metrics
        self._node_id = node_id
        self._salt = ip_hash_salt
        self._segment_duration = segment_duration_s
        self._cache_max = cache_max_s
        self._publish_cache: DecisionCache[str, PublishGrant] = DecisionCache()
        self._play_cache: DecisionCache[tuple[str, str | None], bool] = DecisionCache()
        #: stream id -> tenant id, learned from grants, to label events.
        self._tenants: dict[str, str] = {}
        self._playback_tenants: dict[str, str] = {}

    async def authorize_publish(
        self, key: str, protocol: MediaProtocol, client_addr: str
    ) -> PublishDecision:
        cached = self._publish_cache.get(key)
        if cached is not None:
            return PublishDecision.allow(cached)
        try:
            response = await self._control.authorize_publish(key, protocol, client_ip(client_addr))
        except (ControlUnavailableError, CredentialRejectedError) as exc:
            logger.warning("publish refused: control plane unavailable (%s)", exc)
            self._metrics.publish_denials.labels(PublishDenial.UNAVAILABLE.value).inc()
            return PublishDecision.deny(
                PublishDenial.UNAVAILABLE, "the control plane cannot be reached"
            )
        if not response.allowed:
            denial = PUBLISH_DENIALS.get(response.denial, PublishDenial.INVALID_KEY)
            self._metrics.publish_denials.labels(denial.value).inc()
            return PublishDecision.deny(denial, response.message)
        segment = (
            response.settings.segment_duration_ms / 1000.0
            if response.settings.segment_duration_ms
            else self._segment_duration
        )
        grant = PublishGrant(
            stream_id=response.stream_id,
            playback_id=response.playback_id,
            segment_duration=segment,
            labels={"tenant_id": response.tenant_id},
        )
        self._tenants[grant.stream_id] = response.tenant_id
        self._playback_tenants[grant.playback_id] = response.tenant_id
        # Publishes are rare, so their cache only absorbs reconnect storms: a rotated or
        # deleted key must stop working within a second.
        self._publish_cache.put(key, grant, min(response.cache_ttl_ms / 1000.0, 1.0))
        return PublishDecision.allow(grant)

    async def authorize_play(
        self, playback_id: str, token: str | None, client_addr: str, protocol: MediaProtocol
    ) -> PlayDecision:
        if self._play_cache.get((playback_id, token)):
            return PlayDecision(allowed=True)
        try:
            response = await self._control.authorize_play(
                playback_id, token, client_ip(client_addr), protocol
            )
        except (ControlUnavailableError, CredentialRejectedError) as exc:
            logger.warning("play refused: control plane unavailable (%s)", exc)
            return PlayDecision(
                allowed=False,
                denial=PlayDenial.UNAVAILABLE,
                message="the control plane cannot be reached",
            )
        if not response.allowed:
            denial = PLAY_DENIALS.get(response.denial, PlayDenial.UNKNOWN)
            self._metrics.play_denials.labels(denial.value).inc()
            return PlayDecision(allowed=False, denial=denial, message=response.message)
        self._play_cache.put(
            (playback_id, token), True, min(response.cache_ttl_ms / 1000.0, self._cache_max)
        )
        return PlayDecision(allowed=True)

    def forget_key(self, key: str) -> None:
        self._publish_cache.discard(key)

    def emit(self, event: EngineEvent) -> None:
        """Spools the event. Never raises into the engine."""
        try:
            if isinstance(event, PublishDenied):
                return
            tenant_id = self._tenants.get(event.stream_id, "")
            envelope = build_event(
                event, node_id=self._node_id, tenant_id=tenant_id, salt=self._salt
            )
            if envelope is None:
                return
            # Health samples may be dropped under spool pressure; sessions and lifecycles not.
            record_class = (
                RecordClass.SAMPLE if isinstance(event, IngestHealth) else RecordClass.KEEP
            )
            self._spool.append(envelope.SerializeToString(), record_class)
            self._metrics.events_spooled.labels(event.kind.value).inc()
        except Exception:
            logger.exception("could not spool %s event", event.kind)
