"""`tidecast up`: every plane of Tidecast in one process on embedded defaults.

This is the one place allowed to import several planes, and only their entry points.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
from pydantic import SecretStr

from control_plane.app import Database, open_database
from control_plane.edges.service import EdgeRegistryService
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.serve import (
    bootstrap_platform_admin,
    running_servers,
    stop_on_signals,
    until_stopped,
)
from control_plane.settings import ControlPlaneSettings
from data_plane.serve import running_data_plane
from data_plane.settings import DataPlaneSettings
from edge_sidecar.settings import EdgeSidecarSettings
from edge_sidecar.supervisor import EdgeSidecar
from tidecast_cli.data_dir import (
    LocalCredentials,
    ensure_data_dir,
    read_credentials,
    signing_secret,
    write_credentials,
)
from tidecast_cli.single_node_options import SingleNodeOptions

logger = logging.getLogger(__name__)

ADMIN_EMAIL = "admin@tidecast.local"


def control_settings(options: SingleNodeOptions) -> ControlPlaneSettings:
    return ControlPlaneSettings(
        database_url=f"sqlite+aiosqlite:///{options.data_dir / 'control.db'}",
        signing_secret=SecretStr(signing_secret(options.data_dir)),
        environment="single-node",
        http_host=options.host,
        http_port=options.http_port,
        grpc_host=options.host,
        grpc_port=options.grpc_port,
        public_rtmp_url=f"rtmp://{options.host}:{options.rtmp_port}/live",
        public_playback_url=f"http://{options.host}:{options.hls_port}",
        public_webrtc_url=f"http://{options.host}:{options.webrtc_port}",
    )


async def bootstrap_admin(
    settings: ControlPlaneSettings, database: Database, data_dir: Path, api_url: str
) -> LocalCredentials:
    """Creates the platform admin and a platform token on first start."""
    existing = read_credentials(data_dir)
    password = secrets.token_urlsafe(18)
    created, token = await bootstrap_platform_admin(
        settings, database, ADMIN_EMAIL, password, label="tidecast up"
    )
    if not created and existing is not None:
        if existing.api_url != api_url:
            existing = LocalCredentials(
                api_url, existing.token, existing.admin_email, existing.admin_password
            )
            write_credentials(data_dir, existing)
        return existing
    if token is None:
        raise RuntimeError(
            f"the database in {data_dir} has an admin but {data_dir}/credentials.json "
            "is missing; restore it or start with a new --data-dir"
        )
    credentials = LocalCredentials(
        api_url=api_url, token=token, admin_email=ADMIN_EMAIL, admin_password=password
    )
    write_credentials(data_dir, credentials)
    return credentials


LOCAL_CLUSTER = "local"


async def local_enrollment_token(settings: ControlPlaneSettings, database: Database) -> str:
    async with database.session_factory() as session:
        registry = EdgeRegistryService(session, settings)
        clusters = await registry.list_clusters(after=None, limit=1000)
        cluster = next((c for c in clusters if c.name == LOCAL_CLUSTER), None)
        if cluster is None:
            cluster = await registry.create_cluster(LOCAL_CLUSTER, "local")
        token, _ = await registry.create_enrollment_token(cluster.id, 600)
        return token


def data_settings(options: SingleNodeOptions, grpc_port: int, token: str) -> DataPlaneSettings:
    return DataPlaneSettings(
        bus="memory",
        warehouse="chdb",
        chdb_path=options.data_dir / "analytics",
        control_target=f"{options.host}:{grpc_port}",
        control_token=SecretStr(token),
        ingress_host=options.host,
        ingress_port=options.ingress_port,
        api_host=options.host,
        api_port=options.analytics_port,
    )


def edge_settings(
    options: SingleNodeOptions, grpc_port: int, token: str, ingress_port: int | None
) -> EdgeSidecarSettings:
    return EdgeSidecarSettings(
        control_target=f"{options.host}:{grpc_port}",
        ingress_target=f"{options.host}:{ingress_port}" if ingress_port else None,
        enroll_token=SecretStr(token),
        state_dir=options.data_dir / "edge",
        region="local",
        bind_host=options.host,
        public_host=options.host,
        rtmp_port=options.rtmp_port,
        http_port=options.hls_port,
        admin_port=options.edge_admin_port,
        webrtc_port=options.webrtc_port,
    )


async def _wait_ready(api_url: str, grpc_target: str, deadline_s: float = 30.0) -> None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{api_url}/healthz")).status_code == 200:
                    break
            if loop.time() > end:
                raise RuntimeError("the control plane REST API did not become ready")
            await asyncio.sleep(0.1)
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        await asyncio.wait_for(channel.channel_ready(), deadline_s)


async def run_single_node(options: SingleNodeOptions, announce: Callable[[str], None]) -> None:
    ensure_data_dir(options.data_dir)
    settings = control_settings(options)
    api_url = f"http://{options.host}:{options.http_port}"
    with stop_on_signals() as stop:
        async with open_database(settings, migrate=True) as database:
            credentials = await bootstrap_admin(settings, database, options.data_dir, api_url)
            async with (
                running_servers(settings, database, ControlPlaneMetrics(), grace_s=2.0) as servers,
                running_data_plane(
                    data_settings(options, servers.grpc_port, credentials.token)
                ) as data_plane,
            ):
                edge: EdgeSidecar | None = None
                try:
                    await _wait_ready(api_url, f"{options.host}:{servers.grpc_port}")
                    announce(f"control plane API   {api_url}  (OpenAPI: {api_url}/docs)")
                    announce(f"control plane gRPC  {options.host}:{servers.grpc_port}")
                    analytics_url = f"http://{options.host}:{data_plane.api_port}"
                    announce(
                        f"analytics API       {analytics_url}  (OpenAPI: {analytics_url}/docs)"
                    )
                    announce(
                        f"realtime WebSocket  ws://{options.host}:{data_plane.api_port}"
                        "/v1/tenants/<tenant id>/realtime"
                    )
                    if options.with_edge:
                        token = await local_enrollment_token(settings, database)
                        edge = EdgeSidecar(
                            edge_settings(
                                options, servers.grpc_port, token, data_plane.ingress_port
                            )
                        )
                        await edge.start()
                        announce(f"edge RTMP ingest    {edge.rtmp_url}/<stream key>")
                        announce(
                            f"edge HLS playback   {edge.http_url}/hls/<playback id>/index.m3u8"
                        )
                        if edge.engine is not None and edge.engine.webrtc is not None:
                            announce(f"edge WHIP ingest    {edge.webrtc_url}/whip/<stream key>")
                            announce(f"edge WHEP playback  {edge.webrtc_url}/whep/<playback id>")
                        announce(
                            f"edge health         http://{options.host}:{edge.admin_port}/healthz"
                        )
                    announce(f"data directory      {options.data_dir}")
                    announce(
                        f"admin               {credentials.admin_email} / "
                        f"password in {options.data_dir}/credentials.json"
                    )
                    announce(
                        "next: tidecast tenant create NAME; "
                        "tidecast stream create --tenant NAME my-stream"
                    )
                    announce("Tidecast is ready (Ctrl-C stops it)")
                    await until_stopped(servers, stop)
                finally:
                    announce("stopping...")
                    if edge is not None:
                        await edge.stop()
    announce("stopped")
