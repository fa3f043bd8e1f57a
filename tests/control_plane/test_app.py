"""The app's own routes: health and request metrics."""

from __future__ import annotations

import pytest

from tests.control_plane.running import ControlPlane

pytestmark = pytest.mark.asyncio


# -- operations ---------------------------------------------------------------------------


async def test_health_and_request_metrics_by_route_template(control: ControlPlane) -> None:
    health = await control.as_(None).get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    tenant = await control.tenant()
    await control.client.get(f"/v1/tenants/{tenant}/streams")
    await control.client.get(f"/v1/tenants/{tenant}/streams/nope")
    await control.client.get("/v1/no-such-route")
    metrics = await control.as_(None).get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert (
        'tidecast_control_http_requests_total{method="GET",'
        'route="/v1/tenants/{tenant_id}/streams",status="200"} 1.0'
    ) in text
    assert (
        'tidecast_control_http_requests_total{method="GET",'
        'route="/v1/tenants/{tenant_id}/streams/{stream_id}",status="404"} 1.0'
    ) in text
    assert 'route="unmatched",status="404"' in text
    assert 'tidecast_control_http_request_duration_seconds_count{method="POST",' in text
    assert tenant not in text and "nope" not in text
