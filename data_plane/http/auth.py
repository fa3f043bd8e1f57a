"""Who is calling the data plane's HTTP API, asked of the control plane's Directory."""

from __future__ import annotations

from fastapi import HTTPException, Request

from data_plane.directory.client import Caller, CredentialRefusedError, DirectoryClient

MAX_BEARER_LEN = 4096


def bearer_from(authorization: str | None, query_token: str | None) -> str | None:
    """The bearer credential from the Authorization header, or from `access_token` in the
    query string (browsers cannot set headers on a WebSocket)."""
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return query_token or None


async def caller_for(directory: DirectoryClient, bearer: str | None) -> Caller:
    if not bearer or len(bearer) > MAX_BEARER_LEN:
        raise HTTPException(
            401, "missing or malformed bearer credential", {"WWW-Authenticate": "Bearer"}
        )
    try:
        return await directory.authenticate(bearer)
    except CredentialRefusedError as exc:
        raise HTTPException(401, str(exc), {"WWW-Authenticate": "Bearer"}) from exc


async def require_reader(request: Request, tenant_id: str) -> Caller:
    """The caller, if it may read `tenant_id`; a tenant it cannot see is "not found", so
    nobody learns which tenant ids exist."""
    directory: DirectoryClient = request.app.state.directory
    caller = await caller_for(directory, bearer_from(request.headers.get("authorization"), None))
    if not caller.can_read(tenant_id):
        raise HTTPException(404, "tenant not found")
    return caller
