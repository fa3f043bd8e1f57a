"""What `tidecast up` is told: the data directory, the address and every port.

The defaults are declared here once; the `tidecast up` flags take theirs from this class.
Kept apart from `single_node`, which imports every plane, so that reading the defaults
(every `tidecast` command builds its flags) loads none of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SingleNodeOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 50051
    rtmp_port: int = 1935
    hls_port: int = 8088
    edge_admin_port: int = 9102
    ingress_port: int = 50061
    analytics_port: int = 8090
    webrtc_port: int = 8089
    #: Run an edge node beside the control plane.
    with_edge: bool = True
