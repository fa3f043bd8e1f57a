"""The hot-path caches as the composition root wires them (control_plane/hot_paths.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from control_plane.edges.hot_path import NodeAuth
from control_plane.hot_paths import HotPaths, wire_hot_paths
from control_plane.principal import Principal, PrincipalKind
from control_plane.streams.hot_path import PlayRow
from control_plane.streams.repository import PlayStream


def fill(paths: HotPaths) -> None:
    paths.auth.principals.put("token:x", Principal(kind=PrincipalKind.API_TOKEN, subject_id="t"))
    paths.streams.publish.put("key", None)
    play = PlayStream(stream_id="s", tenant_id="t", private_playback=False)
    paths.streams.play.put("pb", PlayRow(stream=play, tenant_active=True))
    paths.edges.nodes.put("cred", NodeAuth(node_id="n", draining=False))


def cached(paths: HotPaths) -> list[bool]:
    return [
        paths.auth.principals.get("token:x")[0],
        paths.streams.publish.get("key")[0],
        paths.streams.play.get("pb")[0],
        paths.edges.nodes.get("cred")[0],
    ]


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(lambda p: p.auth.changed, id="auth"),
        pytest.param(lambda p: p.streams.changed, id="streams"),
        pytest.param(lambda p: p.edges.changed, id="edges"),
        pytest.param(lambda p: p.tenants_changed, id="tenants"),
    ],
)
def test_any_domains_write_clears_every_cache_at_once(
    hook: Callable[[HotPaths], Callable[[], None]],
) -> None:
    paths = wire_hot_paths(ttl_s=30)
    fill(paths)
    assert cached(paths) == [True, True, True, True]
    hook(paths)()
    assert cached(paths) == [False, False, False, False]


def test_a_zero_ttl_caches_nothing() -> None:
    paths = wire_hot_paths(ttl_s=0)
    fill(paths)
    assert cached(paths) == [False, False, False, False]
