"""The `tidecast` command line."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from tidecast_cli.client import ApiClient, CliError
from tidecast_cli.data_dir import resolve_data_dir
from tidecast_cli.descriptors import raise_descriptor_limit
from tidecast_cli.log_redaction import configure_logging
from tidecast_cli.output import emit
from tidecast_cli.single_node_options import SingleNodeOptions
from tidecast_cli.startup import ServicePort, failure_line

app = typer.Typer(
    help="Tidecast: multi-tenant live video.", no_args_is_help=True, pretty_exceptions_enable=False
)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
stream_app = typer.Typer(help="Streams and stream keys.", no_args_is_help=True)
token_app = typer.Typer(help="Tenant API tokens.", no_args_is_help=True)
cluster_app = typer.Typer(help="Edge clusters (platform operators).", no_args_is_help=True)
node_app = typer.Typer(help="Edge nodes (platform operators).", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(stream_app, name="stream")
app.add_typer(token_app, name="token")
app.add_typer(cluster_app, name="cluster")
edge_app = typer.Typer(help="Run an edge node.", no_args_is_help=True)
control_app = typer.Typer(help="Run the control plane on its own (at scale).", no_args_is_help=True)
app.add_typer(control_app, name="control")
app.add_typer(node_app, name="node")
app.add_typer(edge_app, name="edge")
data_app = typer.Typer(help="Run the data plane on its own (at scale).", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory of `tidecast up` (default ~/.tidecast, or TIDECAST_DATA_DIR).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant id or name.")]
#: Stream ids are unique across tenants: the tenant is found when not given.
StreamTenantOpt = Annotated[
    str | None,
    typer.Option("--tenant", "-t", help="Tenant id or name (default: the stream's own)."),
]

STREAM_FIELDS = ["id", "name", "playback_id", "enabled", "private_playback", "live", "created_at"]


@contextmanager
def _client(data_dir: Path | None) -> Iterator[ApiClient]:
    try:
        client = ApiClient.from_environment(data_dir)
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    try:
        yield client
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        client.close()


def _run(
    data_dir: Path | None,
    action: Callable[[ApiClient], Any],
    *,
    as_json: bool,
    fields: list[str] | None = None,
) -> None:
    with _client(data_dir) as client:
        emit(action(client), as_json=as_json, fields=fields)


# -- up -------------------------------------------------------------------------------


@app.command()
def up(
    data_dir: DataDirOpt = None,
    host: Annotated[
        str, typer.Option(help="Address every service binds to.")
    ] = SingleNodeOptions.host,
    http_port: Annotated[
        int, typer.Option(help="Control plane REST port.")
    ] = SingleNodeOptions.http_port,
    grpc_port: Annotated[
        int, typer.Option(help="Control plane gRPC port.")
    ] = SingleNodeOptions.grpc_port,
    rtmp_port: Annotated[
        int, typer.Option(help="Edge RTMP ingest port.")
    ] = SingleNodeOptions.rtmp_port,
    hls_port: Annotated[int, typer.Option(help="Edge HLS/HTTP port.")] = SingleNodeOptions.hls_port,
    edge_admin_port: Annotated[
        int, typer.Option(help="Edge /healthz and /metrics.")
    ] = SingleNodeOptions.edge_admin_port,
    ingress_port: Annotated[
        int, typer.Option(help="Data plane event ingress (gRPC).")
    ] = SingleNodeOptions.ingress_port,
    analytics_port: Annotated[
        int, typer.Option(help="Analytics API and realtime WebSocket port.")
    ] = SingleNodeOptions.analytics_port,
    webrtc_port: Annotated[
        int, typer.Option(help="Edge WHIP/WHEP signaling port.")
    ] = SingleNodeOptions.webrtc_port,
    no_edge: Annotated[bool, typer.Option("--no-edge", help="Control plane only.")] = False,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "WARNING",
) -> None:
    """Run the whole platform on this machine with embedded defaults."""
    from tidecast_cli.single_node import run_single_node

    configure_logging(log_level)
    options = SingleNodeOptions(
        data_dir=resolve_data_dir(data_dir),
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        rtmp_port=rtmp_port,
        hls_port=hls_port,
        edge_admin_port=edge_admin_port,
        ingress_port=ingress_port,
        analytics_port=analytics_port,
        webrtc_port=webrtc_port,
        with_edge=not no_edge,
    )
    ports = [
        ServicePort("the control plane REST API", http_port, "--http-port"),
        ServicePort("the control plane gRPC server", grpc_port, "--grpc-port"),
        ServicePort("the data plane event ingress", ingress_port, "--ingress-port"),
        ServicePort("the analytics API", analytics_port, "--analytics-port"),
        ServicePort("the edge RTMP server", rtmp_port, "--rtmp-port"),
        ServicePort("the edge HLS server", hls_port, "--hls-port"),
        ServicePort("the edge WHIP/WHEP server", webrtc_port, "--webrtc-port"),
        ServicePort("the edge admin endpoint", edge_admin_port, "--edge-admin-port"),
    ]
    _serve(lambda: asyncio.run(run_single_node(options, lambda line: typer.echo(line))), ports)


def _serve(run: Callable[[], None], ports: list[ServicePort]) -> None:
    """Runs a long-lived command; a service that cannot start (or stops) ends it with one
    line naming the service, its port and how to change it, and exit code 1."""
    raise_descriptor_limit()
    try:
        run()
    except (OSError, RuntimeError) as exc:
        typer.echo(failure_line(exc, ports), err=True)
        raise typer.Exit(1) from None


# -- tenants --------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(name: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Create a tenant."""
    _run(data_dir, lambda c: c.request("POST", "/v1/tenants", json={"name": name}), as_json=as_json)


@tenant_app.command("list")
def tenant_list(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List tenants you can see."""
    _run(
        data_dir,
        lambda c: c.paginate("/v1/tenants"),
        as_json=as_json,
        fields=["id", "name", "status", "created_at"],
    )


@tenant_app.command("suspend")
def tenant_suspend(tenant: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Suspend a tenant (platform operators)."""
    _run(
        data_dir,
        lambda c: c.request(
            "PATCH", f"/v1/tenants/{c.resolve_tenant(tenant)}", json={"status": "suspended"}
        ),
        as_json=as_json,
    )


@tenant_app.command("resume")
def tenant_resume(tenant: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Lift a tenant's suspension (platform operators)."""
    _run(
        data_dir,
        lambda c: c.request(
            "PATCH", f"/v1/tenants/{c.resolve_tenant(tenant)}", json={"status": "active"}
        ),
        as_json=as_json,
    )


# -- streams --------------------------------------------------------------------------


def _print_new_key(stream: dict[str, Any], as_json: bool) -> None:
    if as_json:
        emit(stream, as_json=True)
        return
    emit(stream, as_json=False, fields=["id", "name", "stream_key", "playback_id"])
    ingest = stream["ingest_url"]
    key = stream["stream_key"]
    typer.echo("")
    typer.echo(f"push (RTMP):  {ingest}")
    # OBS and most encoders ask for the two halves in separate boxes.
    typer.echo(f"  OBS Server:     {ingest.removesuffix('/' + key)}")
    typer.echo(f"  OBS Stream Key: {key}")
    typer.echo(
        f"  e.g. ffmpeg -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine "
        f"-c:v libx264 -preset veryfast -g 60 -b:v 2500k -c:a aac -f flv {ingest}"
    )
    typer.echo(f"push (WHIP):  {stream['whip_url']}  (the stream key as Bearer token)")
    typer.echo(f"watch (HLS):  {stream['playback_url']}")
    typer.echo(f"watch (WHEP): {stream['whep_url']}")
    typer.echo("the stream key is shown only now; `tidecast stream rotate-key` issues a new one")


@stream_app.command("create")
def stream_create(
    name: str,
    tenant: TenantOpt,
    private: Annotated[bool, typer.Option(help="Require signed playback tokens.")] = False,
    disabled: Annotated[bool, typer.Option(help="Create it disabled.")] = False,
    recording: Annotated[bool, typer.Option(help="Record the stream.")] = False,
    transcode_profile: Annotated[str, typer.Option(help="ABR ladder profile name.")] = "",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a stream and print its key and its RTMP, WHIP, HLS and WHEP URLs."""
    with _client(data_dir) as client:
        tenant_id = client.resolve_tenant(tenant)
        stream = client.request(
            "POST",
            f"/v1/tenants/{tenant_id}/streams",
            json={
                "name": name,
                "private_playback": private,
                "enabled": not disabled,
                "recording": recording,
                "transcode_profile": transcode_profile,
            },
        )
        _print_new_key(stream, as_json)


@stream_app.command("list")
def stream_list(tenant: TenantOpt, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's streams."""
    _run(
        data_dir,
        lambda c: c.paginate(f"/v1/tenants/{c.resolve_tenant(tenant)}/streams"),
        as_json=as_json,
        fields=STREAM_FIELDS,
    )


@stream_app.command("get")
def stream_get(
    stream_id: str,
    tenant: StreamTenantOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show one stream."""
    _run(data_dir, lambda c: c.request("GET", c.stream_path(stream_id, tenant)), as_json=as_json)


@stream_app.command("rotate-key")
def stream_rotate_key(
    stream_id: str,
    tenant: StreamTenantOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a new stream key; the old one stops working at once."""
    with _client(data_dir) as client:
        stream = client.request("POST", f"{client.stream_path(stream_id, tenant)}/rotate-key")
        _print_new_key(stream, as_json)


@stream_app.command("update")
def stream_update(
    stream_id: str,
    tenant: StreamTenantOpt = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
    private: Annotated[bool | None, typer.Option("--private/--public")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change a stream's settings."""
    body: dict[str, Any] = {}
    if enabled is not None:
        body["enabled"] = enabled
    if private is not None:
        body["private_playback"] = private
    if name is not None:
        body["name"] = name
    _run(
        data_dir,
        lambda c: c.request("PATCH", c.stream_path(stream_id, tenant), json=body),
        as_json=as_json,
    )


@stream_app.command("delete")
def stream_delete(
    stream_id: str,
    tenant: StreamTenantOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Delete a stream; its key stops working at once."""

    def action(c: ApiClient) -> dict[str, str]:
        c.request("DELETE", c.stream_path(stream_id, tenant))
        return {"deleted": stream_id}

    _run(data_dir, action, as_json=as_json)


@stream_app.command("playback-token")
def stream_playback_token(
    stream_id: str,
    tenant: StreamTenantOpt = None,
    ttl: Annotated[int, typer.Option(help="Seconds the token is valid.")] = 3600,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign a playback token for a private stream."""
    _run(
        data_dir,
        lambda c: c.request(
            "POST",
            f"{c.stream_path(stream_id, tenant)}/playback-tokens",
            json={"ttl_seconds": ttl},
        ),
        as_json=as_json,
    )


# -- tokens ---------------------------------------------------------------------------


@token_app.command("create")
def token_create(
    tenant: TenantOpt,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    scope: Annotated[
        list[str] | None,
        typer.Option(help="read, write or admin; repeat for several (default: read and write)."),
    ] = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant API token; the secret is shown only now."""
    scopes = scope or ["read", "write"]
    _run(
        data_dir,
        lambda c: c.request(
            "POST",
            f"/v1/tenants/{c.resolve_tenant(tenant)}/tokens",
            json={"name": name, "scopes": scopes},
        ),
        as_json=as_json,
        fields=["id", "name", "scopes", "token"],
    )


@token_app.command("list")
def token_list(tenant: TenantOpt, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List a tenant's API tokens (never their secrets)."""
    _run(
        data_dir,
        lambda c: c.paginate(f"/v1/tenants/{c.resolve_tenant(tenant)}/tokens"),
        as_json=as_json,
        fields=["id", "name", "scopes", "created_at", "last_used_at", "revoked_at"],
    )


@token_app.command("revoke")
def token_revoke(
    token_id: str, tenant: TenantOpt, data_dir: DataDirOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke an API token."""
    _run(
        data_dir,
        lambda c: c.request("DELETE", f"/v1/tenants/{c.resolve_tenant(tenant)}/tokens/{token_id}"),
        as_json=as_json,
    )


# -- clusters and nodes ---------------------------------------------------------------


@cluster_app.command("create")
def cluster_create(
    name: str,
    region: Annotated[str, typer.Option(help="Region label, e.g. eu-west.")] = "local",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an edge cluster."""
    _run(
        data_dir,
        lambda c: c.request("POST", "/v1/clusters", json={"name": name, "region": region}),
        as_json=as_json,
    )


@cluster_app.command("list")
def cluster_list(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List edge clusters."""
    _run(
        data_dir,
        lambda c: c.paginate("/v1/clusters"),
        as_json=as_json,
        fields=["id", "name", "region", "created_at"],
    )


@node_app.command("enroll-token")
def node_enroll_token(
    cluster: Annotated[str, typer.Option("--cluster", "-c", help="Cluster id or name.")],
    ttl: Annotated[int, typer.Option(help="Seconds the token is valid.")] = 3600,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a one-shot token a new edge node enrolls with."""
    _run(
        data_dir,
        lambda c: c.request(
            "POST",
            f"/v1/clusters/{c.resolve_cluster(cluster)}/enrollment-tokens",
            json={"ttl_seconds": ttl},
        ),
        as_json=as_json,
    )


@node_app.command("list")
def node_list(data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """List edge nodes with their status and load."""
    _run(
        data_dir,
        lambda c: c.paginate("/v1/nodes"),
        as_json=as_json,
        fields=[
            "id",
            "hostname",
            "region",
            "status",
            "cpu_percent",
            "streams_carried",
            "viewers",
            "last_heartbeat_at",
        ],
    )


@node_app.command("drain")
def node_drain(node_id: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Stop sending new publishes and viewers to a node."""
    _run(data_dir, lambda c: c.request("POST", f"/v1/nodes/{node_id}/drain"), as_json=as_json)


@node_app.command("revoke")
def node_revoke(node_id: str, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a node's credential."""
    _run(data_dir, lambda c: c.request("POST", f"/v1/nodes/{node_id}/revoke"), as_json=as_json)


@control_app.command("serve")
def control_serve(
    no_migrate: Annotated[
        bool, typer.Option("--no-migrate", help="Do not apply migrations first.")
    ] = False,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Serve REST and gRPC with settings from CONTROL_PLANE_* variables."""
    from control_plane.serve import run_on_uvloop, serve
    from control_plane.settings import ControlPlaneSettings

    configure_logging(log_level)
    settings = ControlPlaneSettings()
    ports = [
        ServicePort("the control plane REST API", settings.http_port, "CONTROL_PLANE_HTTP_PORT"),
        ServicePort("the control plane gRPC server", settings.grpc_port, "CONTROL_PLANE_GRPC_PORT"),
    ]
    _serve(
        lambda: run_on_uvloop(
            serve(settings, migrate=not no_migrate, announce=lambda m: typer.echo(m))
        ),
        ports,
    )


@control_app.command("migrate")
def control_migrate() -> None:
    """Bring the configured database to the newest schema."""
    from control_plane.serve import migrate
    from control_plane.settings import ControlPlaneSettings

    asyncio.run(migrate(ControlPlaneSettings()))
    typer.echo("database is at the newest schema")


@control_app.command("bootstrap-admin")
def control_bootstrap_admin(
    email: Annotated[str, typer.Option(help="The platform admin's email.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="The platform admin's password.")
    ],
) -> None:
    """Create the first platform admin and print a platform API token (once)."""
    from control_plane.serve import bootstrap_admin
    from control_plane.settings import ControlPlaneSettings

    created, token = asyncio.run(bootstrap_admin(ControlPlaneSettings(), email, password))
    if not created:
        typer.echo("a platform admin exists already; nothing was created", err=True)
        raise typer.Exit(1)
    typer.echo(f"platform token (shown once): {token}")


@edge_app.command("run")
def edge_run(
    control: Annotated[
        str | None,
        typer.Option(help="Control plane gRPC address HOST:PORT (or EDGE_CONTROL_TARGET)."),
    ] = None,
    enroll_token: Annotated[
        str | None,
        typer.Option(help="One-shot enrollment token (or EDGE_ENROLL_TOKEN); needed once."),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Where credentials and the event spool live (or EDGE_STATE_DIR)."),
    ] = None,
    ingress: Annotated[
        str | None,
        typer.Option(help="Data plane event ingress HOST:PORT (or EDGE_INGRESS_TARGET)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Run an edge node: enroll once, host the media engine, heartbeat, ship events."""
    from edge_sidecar.settings import EdgeSidecarSettings
    from tidecast_cli.edge_node import run_edge

    configure_logging(log_level)
    overrides: dict[str, Any] = {}
    if control:
        overrides["control_target"] = control
    if enroll_token:
        overrides["enroll_token"] = enroll_token
    if state_dir:
        overrides["state_dir"] = state_dir
    if ingress:
        overrides["ingress_target"] = ingress
    try:
        settings = EdgeSidecarSettings(**overrides)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    ports = [
        ServicePort("the edge RTMP server", settings.rtmp_port, "EDGE_RTMP_PORT"),
        ServicePort("the edge HLS server", settings.http_port, "EDGE_HTTP_PORT"),
        ServicePort("the edge WHIP/WHEP server", settings.webrtc_port, "EDGE_WEBRTC_PORT"),
        ServicePort("the edge admin endpoint", settings.admin_port, "EDGE_ADMIN_PORT"),
    ]
    try:
        _serve(lambda: asyncio.run(run_edge(settings, lambda line: typer.echo(line))), ports)
    except typer.Exit:
        raise
    except Exception as exc:
        # Enrollment and credential errors of the sidecar: one line as well.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


@data_app.command("serve")
def data_serve(
    role: Annotated[
        list[str] | None,
        typer.Option(help="ingress, ingest or api; repeat for several (default: all three)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level.")] = "INFO",
) -> None:
    """Serve data-plane roles with settings from DATA_PLANE_* variables."""
    from data_plane.serve import ALL_ROLES, Role, serve
    from data_plane.settings import DataPlaneSettings

    configure_logging(log_level)
    try:
        roles = [Role(r) for r in role] if role else list(ALL_ROLES)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    settings = DataPlaneSettings()
    ports = [
        ServicePort(
            "the data plane event ingress", settings.ingress_port, "DATA_PLANE_INGRESS_PORT"
        ),
        ServicePort("the analytics API", settings.api_port, "DATA_PLANE_API_PORT"),
    ]
    _serve(lambda: asyncio.run(serve(settings, roles, announce=lambda m: typer.echo(m))), ports)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
