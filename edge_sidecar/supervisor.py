"""The edge node daemon: enrolls, hosts the media engine, heartbeats, spools events."""

from __future__ import annotations

import logging
import time

from tidecast.common.v1 import common_pb2
from tidecast.edge.v1 import edge_control_pb2 as pb

from edge_sidecar import credentials as node_credentials
from edge_sidecar.admin_http import AdminServer, create_admin_app
from edge_sidecar.control_client import ControlClient
from edge_sidecar.engine_hooks import SidecarHooks
from edge_sidecar.errors import CredentialRejectedError
from edge_sidecar.heartbeat import Heartbeater, NodePlace
from edge_sidecar.ingress_client import IngressClient
from edge_sidecar.metrics import EdgeMetrics
from edge_sidecar.settings import EdgeSidecarSettings
from edge_sidecar.shipper import EventShipper, ShipperMetrics
from edge_sidecar.spool import EventSpool
from media_plane.edge_engine import MediaEngine

logger = logging.getLogger(__name__)

VERSION = "0.1.0"


class EdgeSidecar:
    def __init__(self, settings: EdgeSidecarSettings) -> None:
        self.settings = settings
        self.metrics = EdgeMetrics()
        self.control = ControlClient(settings.control_target, timeout_s=settings.control_timeout_s)
        self.node: node_credentials.NodeCredentials | None = None
        self.spool: EventSpool | None = None
        self.engine: MediaEngine | None = None
        self.hooks: SidecarHooks | None = None
        self._heartbeater: Heartbeater | None = None
        self.shipper: EventShipper | None = None
        self._ingress: IngressClient | None = None
        self._admin: AdminServer | None = None
        self._started_at = time.monotonic()

    @property
    def rtmp_url(self) -> str:
        port = self.engine.rtmp_port if self.engine else self.settings.rtmp_port
        return f"rtmp://{self.settings.public_host}:{port}/live"

    @property
    def http_url(self) -> str:
        port = self.engine.http_port if self.engine else self.settings.http_port
        return f"http://{self.settings.public_host}:{port}"

    @property
    def webrtc_url(self) -> str:
        port = self.engine.webrtc_port if self.engine else self.settings.webrtc_port
        return f"http://{self.settings.public_host}:{port}"

    @property
    def admin_port(self) -> int:
        return self._admin.port if self._admin else 0

    async def enroll_if_needed(self) -> node_credentials.NodeCredentials:
        state_dir = self.settings.state_dir
        existing = node_credentials.load(state_dir)
        if existing is not None and existing.control_target == self.settings.control_target:
            return existing
        token = self.settings.enroll_token
        if token is None:
            raise CredentialRejectedError(
                f"this node is not enrolled (no credentials in {state_dir}); give an "
                "enrollment token (--enroll-token or EDGE_ENROLL_TOKEN)"
            )
        response = await self.control.enroll(
            token.get_secret_value(),
            pb.EnrollNodeRequest(
                hostname=self.settings.hostname,
                region=self.settings.region,
                location=common_pb2.GeoPoint(lat=self.settings.lat, lon=self.settings.lon),
                rtmp_url=f"rtmp://{self.settings.public_host}:{self.settings.rtmp_port}/live",
                http_url=f"http://{self.settings.public_host}:{self.settings.http_port}",
                bandwidth_capacity_bps=self.settings.bandwidth_capacity_bps,
                version=VERSION,
            ),
        )
        enrolled = node_credentials.NodeCredentials(
            node_id=response.node_id,
            credential=response.node_credential,
            cluster_id=response.cluster_id,
            control_target=self.settings.control_target,
        )
        node_credentials.store(state_dir, enrolled)
        logger.info("enrolled as node %s in cluster %s", enrolled.node_id, enrolled.cluster_id)
        return enrolled

    async def start(self) -> None:
        settings = self.settings
        self.node = await self.enroll_if_needed()
        self.control.set_credential(self.node.credential)
        self.spool = EventSpool(settings.state_dir / "spool", max_bytes=settings.spool_max_bytes)
        self.hooks = SidecarHooks(
            self.control,
            self.spool,
            self.metrics,
            node_id=self.node.node_id,
            ip_hash_salt=settings.ip_hash_salt.get_secret_value(),
            segment_duration_s=settings.segment_duration_s,
            cache_max_s=settings.decision_cache_max_s,
        )
        self.engine = MediaEngine(settings.engine_settings(), self.hooks)
        await self.engine.start()
        self._heartbeater = Heartbeater(
            self.control,
            NodePlace(settings.region, settings.lat, settings.lon),
            self.engine.stats,
            self.metrics,
            settings.heartbeat_interval_s,
        )
        try:
            await self._heartbeater.beat()
        except CredentialRejectedError:
            raise
        except Exception as exc:
            logger.warning("first heartbeat failed, will retry: %s", exc)
        self._heartbeater.start()
        if settings.ingress_target:
            self._ingress = IngressClient(
                settings.ingress_target,
                timeout_s=max(settings.control_timeout_s, 10.0),
                max_message_bytes=16 * 1024 * 1024,
            )
            self._ingress.set_credential(self.node.credential)
            self.shipper = EventShipper(
                self.spool,
                self._ingress,
                ShipperMetrics(self.metrics.registry),
                batch_events=settings.ship_batch_events,
            )
            self.shipper.start()
        self._admin = AdminServer(
            create_admin_app(self.metrics, self.health), settings.bind_host, settings.admin_port
        )
        await self._admin.start()

    def health(self) -> dict[str, object]:
        last = self._heartbeater.last_success if self._heartbeater else None
        control_ok = last is not None and time.monotonic() - last < 3 * (
            self.settings.heartbeat_interval_s
        )
        pending = self.spool.pending() if self.spool else 0
        self.metrics.spool_pending.set(pending)
        if self.spool is not None:
            self.metrics.spool_dropped_samples.set(self.spool.dropped_samples)
        return {
            "status": "ok" if self.engine is not None else "starting",
            "node_id": self.node.node_id if self.node else None,
            "control_plane_reachable": control_ok,
            "spool_pending_events": pending,
            "spool_dropped_samples": self.spool.dropped_samples if self.spool else 0,
            "events_rejected_by_ingress": self.shipper.rejected if self.shipper else 0,
            "uptime_s": round(time.monotonic() - self._started_at, 1),
        }

    async def stop(self) -> None:
        if self._admin is not None:
            await self._admin.stop()
        if self._heartbeater is not None:
            await self._heartbeater.stop()
        if self.engine is not None:
            await self.engine.stop()
        if self.shipper is not None:
            await self.shipper.stop()
        if self._ingress is not None:
            await self._ingress.close()
        if self.spool is not None:
            self.spool.sync()
            self.spool.close()
        await self.control.close()
