"""A small synchronous client for the REST API, used by the CLI commands."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from tidecast_cli.data_dir import read_credentials, resolve_data_dir

URL_ENV = "TIDECAST_URL"
TOKEN_ENV = "TIDECAST_TOKEN"


class CliError(Exception):
    """Shown to the user as one line, with a non-zero exit."""


class NotFoundError(CliError):
    """The API answered 404."""


class ApiClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 15.0) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"},
        )

    @classmethod
    def from_environment(cls, data_dir: Path | None) -> ApiClient:
        """TIDECAST_URL and TIDECAST_TOKEN win; otherwise the credentials `tidecast up`
        wrote into the data directory on this machine."""
        url, token = os.environ.get(URL_ENV), os.environ.get(TOKEN_ENV)
        if url and token:
            return cls(url, token)
        directory = resolve_data_dir(data_dir)
        credentials = read_credentials(directory)
        if credentials is None:
            raise CliError(
                f"no credentials: set {URL_ENV} and {TOKEN_ENV}, or run `tidecast up` "
                f"(looked in {directory})"
            )
        return cls(url or credentials.api_url, token or credentials.token)

    def close(self) -> None:
        self._http.close()

    def request(
        self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise CliError(f"cannot reach the API at {self._http.base_url}: {exc}") from exc
        if response.status_code == 204:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.is_error:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            message = error.get("message") or response.reason_phrase
            details = "; ".join(f"{d['field']}: {d['reason']}" for d in error.get("details", []))
            error_type = NotFoundError if response.status_code == 404 else CliError
            raise error_type(
                f"{response.status_code} {message}" + (f" ({details})" if details else "")
            )
        return body

    def paginate(self, path: str, params: dict[str, Any] | None = None) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        while True:
            query = dict(params or {}, limit=200)
            if cursor:
                query["cursor"] = cursor
            page = self.request("GET", path, params=query)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items

    def resolve_tenant(self, tenant: str) -> str:
        """Accepts a tenant id or a tenant name."""
        tenants = self.paginate("/v1/tenants")
        for item in tenants:
            if item["id"] == tenant:
                return str(item["id"])
        matches = [item for item in tenants if item["name"] == tenant]
        if len(matches) == 1:
            return str(matches[0]["id"])
        if len(matches) > 1:
            raise CliError(f"several tenants are named {tenant!r}; use the tenant id")
        raise CliError(f"no tenant {tenant!r}")

    def stream_path(self, stream_id: str, tenant: str | None) -> str:
        """The REST path of a stream. Without `tenant`, the one tenant the caller sees that
        holds it: stream ids are unique, so people need not repeat the tenant."""
        if tenant is not None:
            return f"/v1/tenants/{self.resolve_tenant(tenant)}/streams/{stream_id}"
        for item in self.paginate("/v1/tenants"):
            path = f"/v1/tenants/{item['id']}/streams/{stream_id}"
            try:
                self.request("GET", path)
            except NotFoundError:
                continue
            return path
        raise CliError(f"no stream {stream_id!r} in any tenant this credential sees")

    def resolve_cluster(self, cluster: str) -> str:
        for item in self.paginate("/v1/clusters"):
            if cluster in (item["id"], item["name"]):
                return str(item["id"])
        raise CliError(f"no cluster {cluster!r}")
