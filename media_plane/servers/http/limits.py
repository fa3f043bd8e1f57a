"""How many connections an edge HTTP server holds, and for how long a request head may take.

`ConnectionLimits` is the setting (its defaults are declared here, once); `AddressSlots`
counts open connections per server and per client address and says whether one more may
be admitted. Pure: the listener asks before it keeps an accepted socket.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AddressSlots", "ConnectionLimits"]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    #: A request head must be complete this long after the connection was accepted (or,
    #: on a kept-alive connection, after its first byte arrived). Every byte counts,
    #: empty lines included, so a client dripping CRLF is dropped at the deadline.
    header_timeout_s: float = 10.0
    #: A kept-alive connection with no request under way is closed after this long.
    idle_timeout_s: float = 30.0
    #: Open connections per server; past it new ones are closed at accept. Keep it under
    #: the process's descriptor limit so the other services keep descriptors to work with.
    max_connections: int = 10_000
    #: Open connections per client IP address. A player uses a handful; a NAT in front of
    #: many viewers shares one address, hence not lower.
    max_connections_per_address: int = 256
    #: After an accept fails for lack of descriptors or memory (EMFILE, ENFILE, ENOBUFS,
    #: ENOMEM), accepting pauses for this long, doubling up to `accept_backoff_max_s`.
    accept_backoff_s: float = 0.05
    accept_backoff_max_s: float = 1.0
    #: At most one log line per this interval about failing accepts.
    accept_error_log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.header_timeout_s <= 0 or self.idle_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_connections < 1 or self.max_connections_per_address < 1:
            raise ValueError("connection caps must be at least 1")
        if not 0 < self.accept_backoff_s <= self.accept_backoff_max_s:
            raise ValueError("accept backoff must be positive and at most its maximum")


class AddressSlots:
    """Open connections, in total and per client address."""

    __slots__ = ("_by_address", "_per_address", "_total", "open")

    def __init__(self, total: int, per_address: int) -> None:
        self._total = total
        self._per_address = per_address
        self._by_address: dict[str, int] = {}
        self.open = 0

    def admit(self, address: str) -> bool:
        """Takes a slot for a connection from `address`, or answers False (no slot taken)."""
        held = self._by_address.get(address, 0)
        if self.open >= self._total or held >= self._per_address:
            return False
        self._by_address[address] = held + 1
        self.open += 1
        return True

    def release(self, address: str) -> None:
        held = self._by_address.get(address, 0)
        if held <= 0:
            return
        if held == 1:
            del self._by_address[address]
        else:
            self._by_address[address] = held - 1
        self.open -= 1

    def held_by(self, address: str) -> int:
        return self._by_address.get(address, 0)
