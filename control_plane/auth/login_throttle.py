"""Sign-in throttling: wrong passwords slow down guessing, per account and per address.

Each account (the normalized email, known or not, so the answer does not reveal which
emails exist) and each client address has a count of recent failures. Past its free
allowance, every further failure blocks sign-in for that key for a wait that doubles from
`backoff_base_s` up to `backoff_max_s`; while blocked, an attempt is refused before the
password is checked, so even the right password waits. A success clears the account's
count, not the address's: one account's owner must not reset the count an address
built up guessing others'. Counts are forgotten `window_s` after the last failure.

The state is in this process's memory: with several control-plane replicas each keeps its
own, so the allowance is per replica (documented in the threat model).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from control_plane.errors import TooManyRequestsError
from control_plane.settings import ControlPlaneSettings

__all__ = ["LoginThrottle", "ThrottlePolicy"]


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    free_failures_per_account: int
    free_failures_per_address: int
    backoff_base_s: float
    backoff_max_s: float
    window_s: float
    max_entries: int

    @classmethod
    def from_settings(cls, settings: ControlPlaneSettings) -> ThrottlePolicy:
        return cls(
            free_failures_per_account=settings.login_free_failures_per_account,
            free_failures_per_address=settings.login_free_failures_per_address,
            backoff_base_s=settings.login_backoff_base_s,
            backoff_max_s=settings.login_backoff_max_s,
            window_s=settings.login_failure_window_s,
            max_entries=settings.login_throttle_entries,
        )


@dataclass(slots=True)
class _Failures:
    count: int
    last_at: float
    blocked_until: float


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self._policy = policy
        self._clock = clock
        #: Keyed ("account", email) or ("address", host); least recently failed first.
        self._failures: OrderedDict[tuple[str, str], _Failures] = OrderedDict()

    def check(self, account: str, address: str) -> None:
        """Raises TooManyRequestsError while the account or the address is blocked."""
        now = self._clock()
        wait = max(self._wait(("account", account), now), self._wait(("address", address), now))
        if wait > 0:
            raise TooManyRequestsError(
                "too many failed sign-ins: try again later", retry_after_s=math.ceil(wait)
            )

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        self._fail(("account", account), self._policy.free_failures_per_account, now)
        self._fail(("address", address), self._policy.free_failures_per_address, now)

    def succeeded(self, account: str) -> None:
        self._failures.pop(("account", account), None)

    @property
    def tracked(self) -> int:
        return len(self._failures)

    def _wait(self, key: tuple[str, str], now: float) -> float:
        entry = self._failures.get(key)
        if entry is None:
            return 0.0
        if now - entry.last_at > self._policy.window_s:
            del self._failures[key]
            return 0.0
        return max(0.0, entry.blocked_until - now)

    def _fail(self, key: tuple[str, str], free: int, now: float) -> None:
        entry = self._failures.pop(key, None)
        if entry is None or now - entry.last_at > self._policy.window_s:
            entry = _Failures(0, now, now)
        entry.count += 1
        entry.last_at = now
        beyond = entry.count - free
        if beyond > 0:
            policy = self._policy
            # 2 ** beyond overflows a float long after the cap is reached.
            wait = policy.backoff_base_s * 2.0 ** min(beyond - 1, 60)
            entry.blocked_until = now + min(policy.backoff_max_s, wait)
        self._failures[key] = entry
        while len(self._failures) > self._policy.max_entries:
            self._failures.popitem(last=False)
