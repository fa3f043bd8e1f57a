"""The one line a command prints when one of its services cannot listen on its port.

Every server of the platform that fails to listen raises an OSError whose `filename` is
the "host:port" it tried (REST, gRPC, the edge's servers and its admin endpoint). The
commands know which service they gave each port to and how to change it; this module
turns the error into "error: <service> cannot listen on <address>: <reason> (change it
with <flag>)". Anything else is not a listen failure and is reported as it is.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ServicePort", "failure_line"]

#: "host:port" or "[v6]:port"; a file path (an OSError's usual filename) never matches.
_ADDRESS = re.compile(r"[^/\s]+:([0-9]{1,5})")


@dataclass(frozen=True)
class ServicePort:
    service: str
    port: int
    #: The flag or environment variable that changes the port.
    change: str


def failure_line(exc: BaseException, ports: Sequence[ServicePort]) -> str:
    """The one line that says why the command could not start (or stopped)."""
    error = _listen_error(exc)
    if error is None:
        return f"error: {exc}"
    address = str(error.filename)
    port = int(address.rpartition(":")[2])
    reason = os.strerror(error.errno) if error.errno else error.strerror
    owner = next((entry for entry in ports if entry.port == port), None)
    if owner is None:
        return f"error: cannot listen on {address}: {reason}"
    return (
        f"error: {owner.service} cannot listen on {address}: {reason} "
        f"(change it with {owner.change})"
    )


def _listen_error(exc: BaseException) -> OSError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if (
            isinstance(current, OSError)
            and isinstance(current.filename, str)
            and _ADDRESS.fullmatch(current.filename)
        ):
            return current
        if isinstance(current, BaseExceptionGroup):
            for inner in current.exceptions:
                found = _listen_error(inner)
                if found is not None:
                    return found
        current = current.__cause__ or current.__context__
    return None
