"""A grpc.aio EdgeControl server that answers AuthorizePublish with a constant, no work at
all: the ceiling of Python gRPC unary calls on this machine, for comparison.

    python bench/grpc_ceiling_server.py --port P
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import grpc
from tidecast.edge.v1 import edge_control_pb2 as pb
from tidecast.edge.v1 import edge_control_pb2_grpc


class Constant(edge_control_pb2_grpc.EdgeControlServicer):
    async def AuthorizePublish(  # noqa: N802
        self, request: pb.AuthorizePublishRequest, context: Any
    ) -> pb.AuthorizePublishResponse:
        return pb.AuthorizePublishResponse(allowed=True, stream_id="s", tenant_id="t")


async def main(port: int) -> None:
    server = grpc.aio.server()
    edge_control_pb2_grpc.add_EdgeControlServicer_to_server(Constant(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
