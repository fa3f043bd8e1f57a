"""What every benchmark here needs: free loopback ports and order statistics."""

from __future__ import annotations

import signal
import socket
import statistics
from types import FrameType


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def stop_children_on_sigterm() -> None:
    """A SIGTERM (a timeout, a kill) ends the benchmark as Ctrl-C does, so the `with`
    blocks that started servers stop them instead of leaving them running."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
