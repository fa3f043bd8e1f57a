"""Tenant routes on both backends: create, read, rename, suspend, delete."""

from __future__ import annotations

import pytest

from tests.control_plane.running import ControlPlane, walk

pytestmark = pytest.mark.asyncio


# -- tenants ----------------------------------------------------------------------------


async def test_tenants_are_created_read_renamed_and_deleted(control: ControlPlane) -> None:
    created = await control.client.post("/v1/tenants", json={"name": "  Acme Corp  "})
    assert created.status_code == 201
    tenant = created.json()
    assert tenant["name"] == "Acme Corp" and tenant["status"] == "active"
    fetched = await control.client.get(f"/v1/tenants/{tenant['id']}")
    assert fetched.json() == tenant
    listed, _ = await walk(control, "/v1/tenants", limit=200)
    assert tenant["id"] in listed

    admin = control.as_(await control.token(tenant["id"], "read", "write", "admin"))
    renamed = await admin.patch(f"/v1/tenants/{tenant['id']}", json={"name": "Acme"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Acme"
    assert (await admin.get("/v1/tenants")).json()["items"] == [renamed.json()]
    # A tenant cannot delete itself with a token; a platform operator can.
    assert (await admin.delete(f"/v1/tenants/{tenant['id']}")).status_code == 403
    stream = await control.stream(tenant["id"])
    deleted = await control.client.delete(f"/v1/tenants/{tenant['id']}")
    assert deleted.status_code == 204
    assert (await control.client.get(f"/v1/tenants/{tenant['id']}")).status_code == 404
    stream_url = f"/v1/tenants/{tenant['id']}/streams/{stream['id']}"
    assert (await control.client.get(stream_url)).status_code == 404
    # Its tokens went with it.
    assert (await admin.get(f"/v1/tenants/{tenant['id']}")).status_code == 401


async def test_suspension_is_for_platform_operators(control: ControlPlane) -> None:
    tenant = await control.tenant()
    admin = control.as_(await control.token(tenant, "read", "write", "admin"))
    refused = await admin.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert refused.status_code == 403
    # A refused PATCH changes nothing, not even the fields it was allowed to change.
    refused = await admin.patch(f"/v1/tenants/{tenant}", json={"name": "n", "status": "suspended"})
    assert refused.status_code == 403
    unchanged = (await control.client.get(f"/v1/tenants/{tenant}")).json()
    assert (unchanged["name"], unchanged["status"]) == ("acme", "active")
    suspended = await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "suspended"})
    assert suspended.json()["status"] == "suspended"
    restored = await control.client.patch(f"/v1/tenants/{tenant}", json={"status": "active"})
    assert restored.json()["status"] == "active"
