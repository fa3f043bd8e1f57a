"""The REST surface as the tests see it: every operation, read from the OpenAPI document, so
a new route is covered by the matrices without editing them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

TENANT_PREFIX = "/v1/tenants/{tenant_id}"
PLATFORM_PREFIXES = ("/v1/clusters", "/v1/nodes")
#: Reachable without credentials.
PUBLIC_PATHS = {"/healthz", "/metrics", "/v1/auth/login", "/v1/auth/refresh"}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

#: A valid body for every operation that takes one, so that a refusal comes from scoping and
#: not from validation. A new operation with a body fails `operations()` until it is listed.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/auth/login"): {"email": "nobody@example.test", "password": "x"},
    ("POST", "/v1/auth/refresh"): {"refresh_token": "rt_nope"},
    ("POST", "/v1/tenants"): {"name": "new"},
    ("PATCH", "/v1/tenants/{tenant_id}"): {"name": "renamed"},
    ("POST", "/v1/tenants/{tenant_id}/streams"): {"name": "x"},
    ("PATCH", "/v1/tenants/{tenant_id}/streams/{stream_id}"): {"name": "y"},
    ("POST", "/v1/tenants/{tenant_id}/streams/{stream_id}/playback-tokens"): {"ttl_seconds": 60},
    ("POST", "/v1/tenants/{tenant_id}/tokens"): {"name": "x", "scopes": ["read"]},
    ("POST", "/v1/tenants/{tenant_id}/members"): {
        "email": "someone@example.test",
        "role": "viewer",
    },
    ("POST", "/v1/clusters"): {"name": "c", "region": "eu"},
    ("POST", "/v1/clusters/{cluster_id}/enrollment-tokens"): {"ttl_seconds": 60},
}

#: What each tenant operation requires, where it is not the default (`read` for GET, `write`
#: for the other methods). Each entry is a decision, not a description of the code:
REQUIRED: dict[tuple[str, str], str] = {
    # Minting a viewer's playback token changes no state, and viewers need one to preview
    # a private stream in the console.
    ("POST", "/v1/tenants/{tenant_id}/streams/{stream_id}/playback-tokens"): "read",
    # Credentials and the tenant itself are administered, not written.
    ("GET", "/v1/tenants/{tenant_id}/tokens"): "admin",
    ("GET", "/v1/tenants/{tenant_id}/tokens/{token_id}"): "admin",
    ("POST", "/v1/tenants/{tenant_id}/tokens"): "admin",
    ("DELETE", "/v1/tenants/{tenant_id}/tokens/{token_id}"): "admin",
    ("POST", "/v1/tenants/{tenant_id}/members"): "admin",
    ("PATCH", "/v1/tenants/{tenant_id}"): "admin",
    # Only owners (and platform operators) remove people or the whole tenant; API tokens
    # are never owners.
    ("DELETE", "/v1/tenants/{tenant_id}/members/{user_id}"): "owner",
    ("DELETE", "/v1/tenants/{tenant_id}"): "owner",
}

SCOPE_ORDER = ("read", "write", "admin", "owner")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    has_body: bool

    @property
    def key(self) -> tuple[str, str]:
        return (self.method, self.path)

    @property
    def body(self) -> dict[str, Any] | None:
        return BODIES.get(self.key)

    @property
    def is_write(self) -> bool:
        return self.method in WRITE_METHODS

    @property
    def tenant_scoped(self) -> bool:
        return self.path.startswith(TENANT_PREFIX)

    @property
    def platform_only(self) -> bool:
        return self.path.startswith(PLATFORM_PREFIXES)

    @property
    def required(self) -> str:
        return REQUIRED.get(self.key, "write" if self.is_write else "read")

    def allowed_with(self, scopes: set[str]) -> bool:
        """Whether a tenant API token holding `scopes` passes the scope check."""
        return self.required in scopes

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(app: FastAPI) -> list[Operation]:
    """Every operation of the app, from its OpenAPI document (plus /metrics, which the
    document leaves out)."""
    found = [Operation("GET", "/metrics", False)]
    for path, methods in app.openapi()["paths"].items():
        for method, spec in methods.items():
            operation = Operation(method.upper(), path, "requestBody" in spec)
            if operation.has_body:
                assert operation.key in BODIES, f"add a valid body for {operation} to BODIES"
            found.append(operation)
    return found


def tenant_operations(app: FastAPI) -> list[Operation]:
    found = [op for op in operations(app) if op.tenant_scoped]
    assert len(found) >= 15, found  # the enumeration itself still works
    return found


def platform_operations(app: FastAPI) -> list[Operation]:
    found = [op for op in operations(app) if op.platform_only]
    assert len(found) >= 10, found
    return found
