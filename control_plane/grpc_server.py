"""Assembles the control plane's gRPC server."""

from __future__ import annotations

import errno

import grpc
from tidecast.directory.v1 import directory_pb2_grpc
from tidecast.edge.v1 import edge_control_pb2_grpc

from control_plane.app import Database
from control_plane.directory.servicer import DirectoryServicer
from control_plane.edge_control.servicer import EdgeControlServicer
from control_plane.observability.metrics import ControlPlaneMetrics
from control_plane.settings import ControlPlaneSettings

MAX_MESSAGE_BYTES = 1024 * 1024


def create_grpc_server(
    settings: ControlPlaneSettings,
    database: Database,
    metrics: ControlPlaneMetrics,
) -> tuple[grpc.aio.Server, int]:
    """Returns the server and the port it bound (settings.grpc_port may be 0)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
    )
    edge_control_pb2_grpc.add_EdgeControlServicer_to_server(
        EdgeControlServicer(settings, database.session_factory, metrics, database.hot_paths), server
    )
    directory_pb2_grpc.add_DirectoryServicer_to_server(
        DirectoryServicer(settings, database.session_factory, database.hot_paths), server
    )
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        # grpc tells no more; the filename names the address, as for the REST socket.
        raise OSError(errno.EADDRINUSE, "in use, or not an address of this machine", address)
    return server, port
