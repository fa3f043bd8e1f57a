"""Secrets are shown once, where they are issued, and nowhere else: not in listings or
reads, not in error bodies, not in logs at any level, not in the database."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select
from tidecast.edge.v1 import edge_control_pb2 as pb

from control_plane.db.models import Base
from control_plane.settings import ControlPlaneSettings
from tests.control_plane.running import PASSWORD, ControlPlane, running_control_plane, unique

pytestmark = pytest.mark.asyncio


async def full_flow(control: ControlPlane) -> dict[str, str]:
    """Issues one of every kind of secret and uses each; returns them by name."""
    secrets = {"platform token": control.admin_token, "password": PASSWORD}

    cluster = await control.cluster()
    secrets["enrollment token"] = await control.enrollment_token(cluster)
    enrolled = await control.stub.EnrollNode(
        pb.EnrollNodeRequest(enrollment_token=secrets["enrollment token"], hostname="edge")
    )
    secrets["node credential"] = enrolled.node_credential
    metadata = (("authorization", f"Bearer {enrolled.node_credential}"),)
    await control.stub.Heartbeat(pb.HeartbeatRequest(cpu_percent=1.0), metadata=metadata)

    tenant = await control.tenant()
    stream = await control.stream(tenant, private_playback=True)
    secrets["stream key"] = stream["stream_key"]
    rotated = await control.client.post(f"/v1/tenants/{tenant}/streams/{stream['id']}/rotate-key")
    secrets["rotated stream key"] = rotated.json()["stream_key"]
    for key in (secrets["rotated stream key"], secrets["stream key"], "sk_wrong"):
        await control.stub.AuthorizePublish(
            pb.AuthorizePublishRequest(stream_key=key), metadata=metadata
        )
    playback = await control.client.post(
        f"/v1/tenants/{tenant}/streams/{stream['id']}/playback-tokens", json={}
    )
    secrets["playback token"] = playback.json()["token"]
    await control.stub.AuthorizePlay(
        pb.AuthorizePlayRequest(playback_id=stream["playback_id"], token=secrets["playback token"]),
        metadata=metadata,
    )

    created = await control.client.post(
        f"/v1/tenants/{tenant}/tokens", json={"name": "ci", "scopes": ["read", "write"]}
    )
    secrets["api token"] = created.json()["token"]
    secrets["api token secret part"] = secrets["api token"].split(".", 1)[1]
    await control.as_(secrets["api token"]).get(f"/v1/tenants/{tenant}/streams")
    await control.client.delete(f"/v1/tenants/{tenant}/tokens/{created.json()['id']}")
    await control.as_(secrets["api token"]).get(f"/v1/tenants/{tenant}/streams")  # 401

    email = f"{unique('secret')}@example.test"
    await control.member(tenant, email, "admin")
    pair = await control.login(email)
    secrets["access token"] = pair["access_token"]
    secrets["refresh token"] = pair["refresh_token"]
    await control.as_(pair["access_token"]).get("/v1/me")
    rotated_pair = await control.client.post(
        "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    secrets["rotated refresh token"] = rotated_pair.json()["refresh_token"]
    await control.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})

    # Secrets sent where they do not belong are not echoed back.
    echoed = await control.client.post(
        f"/v1/tenants/{tenant}/streams",
        json={"name": 5, "stream_key": secrets["stream key"]},
    )
    assert echoed.status_code == 422
    assert secrets["stream key"] not in echoed.text

    secrets["_tenant"] = tenant
    secrets["_stream"] = stream["id"]
    secrets["_cluster"] = cluster
    secrets["_node"] = enrolled.node_id
    return secrets


async def test_secrets_never_reach_logs_listings_or_the_database(
    settings: ControlPlaneSettings, caplog: pytest.LogCaptureFixture
) -> None:
    # Every logger at DEBUG, from startup on, including those that set their own level
    # (SQLAlchemy's, whose DEBUG output has statement parameters and result rows).
    caplog.set_level(logging.DEBUG)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET:
            caplog.set_level(logging.DEBUG, logger=name)
        if isinstance(logger, logging.Logger):
            assert logger.propagate and not logger.disabled, f"{name} would escape the capture"
    async with running_control_plane(settings) as control:
        issued = await full_flow(control)
        tenant, stream, cluster, node = (
            issued.pop("_tenant"),
            issued.pop("_stream"),
            issued.pop("_cluster"),
            issued.pop("_node"),
        )
        reads = [
            f"/v1/tenants/{tenant}/streams",
            f"/v1/tenants/{tenant}/streams/{stream}",
            f"/v1/tenants/{tenant}/tokens",
            f"/v1/tenants/{tenant}/members",
            f"/v1/tenants/{tenant}",
            "/v1/tenants",
            "/v1/me",
            "/v1/clusters",
            f"/v1/clusters/{cluster}",
            "/v1/nodes",
            f"/v1/nodes/{node}",
            "/metrics",
        ]
        shown = []
        for url in reads:
            response = await control.client.get(url)
            assert response.status_code == 200, url
            shown.append((url, response.text))

        stored = []
        async with control.database.session_factory() as session:
            for table in Base.metadata.sorted_tables:
                for row in (await session.execute(select(table))).all():
                    stored.append((table.name, " ".join(str(value) for value in row)))

    assert caplog.records, "nothing was logged: the capture is not working"
    logged = [caplog.text] + [
        " ".join(
            str(part)
            for part in (record.getMessage(), record.args, record.exc_text, record.__dict__)
        )
        for record in caplog.records
    ]
    for name, secret in issued.items():
        assert len(secret) >= 16, name
        for text in logged:
            assert secret not in text, f"the {name} was logged"
        for url, text in shown:
            assert secret not in text, f"the {name} is shown by GET {url}"
        for table_name, text in stored:
            assert secret not in text, f"the {name} is stored in {table_name}"
