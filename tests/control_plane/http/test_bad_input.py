"""Bad requests get a uniform error body, a precise status, and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.control_plane.routes import operations
from tests.control_plane.running import ControlPlane, fill

pytestmark = pytest.mark.asyncio


def assert_error_shape(response: httpx.Response, status: int, code: str) -> list[dict[str, str]]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    details: list[dict[str, str]] = body["error"]["details"]
    for detail in details:
        assert set(detail) == {"field", "reason"} and detail["field"] and detail["reason"]
    return details


async def snapshot(control: ControlPlane, tenant: str) -> list[Any]:
    """Everything a bad request to the tenant could have changed."""
    base = f"/v1/tenants/{tenant}"
    return [
        (await control.client.get(base)).json(),
        (await control.client.get(f"{base}/streams", params={"limit": 200})).json(),
        (await control.client.get(f"{base}/tokens", params={"limit": 200})).json(),
        (await control.client.get(f"{base}/members")).json(),
    ]


async def test_wrong_types_and_missing_fields_name_the_field_and_change_nothing(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant, name="kept")
    before = await snapshot(control, tenant)
    streams = f"/v1/tenants/{tenant}/streams"
    one = f"{streams}/{stream['id']}"
    tokens = f"/v1/tenants/{tenant}/tokens"
    members = f"/v1/tenants/{tenant}/members"
    email = "a@b.test"
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", streams, {"name": 5}, "body.name"),
        ("POST", streams, {}, "body.name"),
        ("POST", streams, {"name": ""}, "body.name"),
        ("POST", streams, {"name": "x" * 201}, "body.name"),
        ("POST", streams, {"name": None}, "body.name"),
        ("POST", streams, {"name": "x", "enabled": "maybe"}, "body.enabled"),
        ("POST", streams, {"name": "x", "recording": [True]}, "body.recording"),
        ("POST", streams, {"name": "x", "transcode_profile": "Bad!"}, "body.transcode_profile"),
        ("POST", streams, [{"name": "x"}], "body"),
        ("POST", streams, "name", "body"),
        ("PATCH", one, {"enabled": "sometimes"}, "body.enabled"),
        ("PATCH", one, {"name": ""}, "body.name"),
        ("POST", tokens, {"name": "t", "scopes": ["root"]}, "body.scopes.0"),
        ("POST", tokens, {"name": "t", "scopes": []}, "body.scopes"),
        ("POST", tokens, {"name": "t"}, "body.scopes"),
        ("POST", members, {"email": "not-an-email", "role": "viewer"}, "body.email"),
        ("POST", members, {"email": email, "role": "god"}, "body.role"),
        ("POST", members, {"email": email, "role": "viewer", "password": "short"}, "body.password"),
        ("PATCH", f"/v1/tenants/{tenant}", {"status": "deleted"}, "body.status"),
        ("GET", streams + "?limit=0", None, "query.limit"),
        ("GET", streams + "?limit=201", None, "query.limit"),
        ("GET", streams + "?limit=ten", None, "query.limit"),
        ("GET", streams + "?cursor=" + "c" * 65, None, "query.cursor"),
    ]
    for method, url, body, field in cases:
        response = await control.client.request(method, url, json=body)
        details = assert_error_shape(response, 422, "validation_failed")
        assert field in [d["field"] for d in details], (method, url, body, details)
    assert await snapshot(control, tenant) == before


async def test_unknown_fields_are_refused_by_every_operation_with_a_body(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant)
    cluster = await control.cluster()
    ids = {"tenant_id": tenant, "stream_id": stream["id"], "cluster_id": cluster}
    before = await snapshot(control, tenant)
    checked = 0
    for op in operations(control.app):
        if not op.has_body:
            continue
        assert op.body is not None
        response = await control.client.request(
            op.method, fill(op.path, ids), json={**op.body, "is_admin": True}
        )
        details = assert_error_shape(response, 422, "validation_failed")
        assert "body.is_admin" in [d["field"] for d in details], (str(op), details)
        checked += 1
    assert checked >= 10
    assert await snapshot(control, tenant) == before
    # The OpenAPI document says so too, for generated clients.
    schemas = control.app.openapi()["components"]["schemas"]
    for name, schema in schemas.items():
        if name.endswith(("Create", "Update", "Request")):
            assert schema.get("additionalProperties") is False, name


async def test_bodies_over_the_limit_get_413_and_change_nothing(control: ControlPlane) -> None:
    tenant = await control.tenant()
    before = await snapshot(control, tenant)
    url = f"/v1/tenants/{tenant}/streams"
    limit = control.settings.max_body_bytes
    declared = await control.client.post(url, json={"name": "x" * (limit + 1)})
    assert_error_shape(declared, 413, "payload_too_large")

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(limit // 512 + 1):
            yield b"x" * 512
        yield b'"}'

    # No Content-Length: the limit is enforced while the body streams in.
    streamed = await control.client.post(
        url, content=chunked(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert_error_shape(streamed, 413, "payload_too_large")
    lying = await control.client.post(
        url, content=b'{"name": "x"}', headers={"content-length": "not-a-number"}
    )
    assert lying.status_code in (400, 413) and "error" in lying.json()
    assert await snapshot(control, tenant) == before
    just_fits = await control.client.post(url, json={"name": "x" * 200})
    assert just_fits.status_code == 201


async def test_malformed_json_and_wrong_content_types(control: ControlPlane) -> None:
    tenant = await control.tenant()
    before = await snapshot(control, tenant)
    url = f"/v1/tenants/{tenant}/streams"
    for content, content_type in [
        (b"{not json", "application/json"),
        (b'{"name": "x",}', "application/json"),
        (b"", "application/json"),
        (b'{"name": "x"}', "text/plain"),
        (b"name=x", "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
    ]:
        response = await control.client.post(
            url, content=content, headers={"content-type": content_type}
        )
        assert response.status_code in (400, 422), (content, response.text)
        code = "validation_failed" if response.status_code == 422 else "invalid_request"
        assert_error_shape(response, response.status_code, code)
    assert await snapshot(control, tenant) == before


async def test_unknown_routes_and_methods_use_the_error_shape(control: ControlPlane) -> None:
    assert_error_shape(await control.client.get("/v1/nothing-here"), 404, "not_found")
    tenant = await control.tenant()
    wrong_method = await control.client.put(f"/v1/tenants/{tenant}/streams", json={})
    assert_error_shape(wrong_method, 405, "method_not_allowed")
    missing = await control.client.get(f"/v1/tenants/{tenant}/streams/does-not-exist")
    assert_error_shape(missing, 404, "not_found")


async def test_control_characters_in_names_are_refused_and_change_nothing(
    control: ControlPlane,
) -> None:
    tenant = await control.tenant()
    stream = await control.stream(tenant, name="kept")
    before = await snapshot(control, tenant)
    streams = f"/v1/tenants/{tenant}/streams"
    cases: list[tuple[str, str, str]] = [
        ("POST", "/v1/tenants", "body.name"),
        ("PATCH", f"/v1/tenants/{tenant}", "body.name"),
        ("POST", streams, "body.name"),
        ("PATCH", f"{streams}/{stream['id']}", "body.name"),
        ("POST", f"/v1/tenants/{tenant}/tokens", "body.name"),
    ]
    for bad in (
        "bell\x07",
        "nul\x00x",
        "line\nbreak",
        "sep\u2028x",
        "esc\x1b[2J",
        "c1\x85c1",
        "rtl\u202eevil",
    ):
        for method, url, field in cases:
            body = {"name": bad, "scopes": ["read"]} if url.endswith("/tokens") else {"name": bad}
            response = await control.client.request(method, url, json=body)
            details = assert_error_shape(response, 422, "validation_failed")
            reasons = [d["reason"] for d in details if d["field"] == field]
            assert reasons and "control characters" in reasons[0], (method, url, bad, details)
    member = {"email": "bell\x07@b.test", "role": "viewer"}
    refused = await control.client.post(f"/v1/tenants/{tenant}/members", json=member)
    assert "body.email" in [
        d["field"] for d in assert_error_shape(refused, 422, "validation_failed")
    ]
    assert await snapshot(control, tenant) == before
    # What people do write in names stays allowed: accents, scripts, emoji with joiners.
    for name in ("Café Zürich", "東京 ライブ", "family \U0001f468\u200d\U0001f469\u200d\U0001f467"):
        created = await control.client.post(streams, json={"name": name})
        assert created.status_code == 201 and created.json()["name"] == name, created.text
