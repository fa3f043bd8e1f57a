"""Sign-in throttling: the rules on a clock the test moves, then the route on a served app."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from control_plane.auth.login_throttle import LoginThrottle, ThrottlePolicy
from control_plane.errors import TooManyRequestsError
from tests.control_plane.running import (
    PASSWORD,
    ControlPlane,
    make_settings,
    running_control_plane,
    unique,
)

POLICY = ThrottlePolicy(
    free_failures_per_account=3,
    free_failures_per_address=5,
    backoff_base_s=1.0,
    backoff_max_s=8.0,
    window_s=60.0,
    max_entries=100,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def blocked_for(throttle: LoginThrottle, account: str, address: str) -> float:
    try:
        throttle.check(account, address)
    except TooManyRequestsError as exc:
        return exc.retry_after_s
    return 0.0


def test_failures_past_the_allowance_block_for_a_doubling_wait_up_to_the_cap() -> None:
    clock = Clock()
    throttle = LoginThrottle(POLICY, clock)
    waits = []
    for _ in range(8):
        throttle.failed("ada@x.test", "10.0.0.1")
        waits.append(blocked_for(throttle, "ada@x.test", "10.0.0.2"))
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8]
    # Blocked whatever the password: the check comes first. After the wait, allowed.
    clock.now += 8.0
    assert blocked_for(throttle, "ada@x.test", "10.0.0.2") == 0
    # Forgotten a window after the last failure: the allowance is whole again.
    clock.now += POLICY.window_s + 1
    throttle.failed("ada@x.test", "10.0.0.1")
    assert blocked_for(throttle, "ada@x.test", "10.0.0.2") == 0


def test_an_address_guessing_many_accounts_is_blocked_for_all_of_them() -> None:
    clock = Clock()
    throttle = LoginThrottle(POLICY, clock)
    for n in range(6):
        throttle.failed(f"user{n}@x.test", "10.0.0.1")
    assert blocked_for(throttle, "someone-else@x.test", "10.0.0.1") == 1
    assert blocked_for(throttle, "someone-else@x.test", "10.0.0.2") == 0


def test_a_success_clears_the_account_but_not_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(POLICY, clock)
    for _ in range(5):
        throttle.failed("ada@x.test", "10.0.0.1")
    clock.now += 10
    throttle.succeeded("ada@x.test")
    assert blocked_for(throttle, "ada@x.test", "10.0.0.2") == 0
    throttle.failed("bob@x.test", "10.0.0.1")  # the address's sixth failure
    assert blocked_for(throttle, "carol@x.test", "10.0.0.1") == 1


def test_memory_is_bounded_forgetting_the_least_recently_failed() -> None:
    throttle = LoginThrottle(POLICY, Clock())
    for n in range(500):
        throttle.failed(f"user{n}@x.test", f"10.0.{n // 250}.{n % 250}")
    assert throttle.tracked == POLICY.max_entries


@pytest.mark.asyncio
async def test_thirty_wrong_passwords_then_the_right_one_is_refused_until_the_wait_ends(
    database_url: str,
) -> None:
    settings = make_settings(
        database_url,
        login_free_failures_per_account=5,
        login_free_failures_per_address=10,
        # Long enough that the block outlasts the throttled attempts on a loaded machine.
        login_backoff_base_s=3.0,
    )
    async with running_control_plane(settings) as control:
        tenant = await control.tenant()
        email = f"{unique('ada')}@example.test"
        await add_user(control, tenant, email)
        statuses = []
        for _ in range(30):
            wrong = await control.client.post(
                "/v1/auth/login", json={"email": email, "password": "guess"}
            )
            statuses.append(wrong.status_code)
        assert statuses[:5] == [401] * 5 and set(statuses[6:]) == {429}
        right = await control.client.post(
            "/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert right.status_code == 429, right.text
        assert right.json()["error"]["code"] == "too_many_requests"
        assert int(right.headers["Retry-After"]) >= 1
        statuses.append(right.status_code)
        other = httpx.AsyncClient(
            transport=httpx.ASGITransport(control.app, client=("192.0.2.7", 4000)),
            base_url="http://test",
        )
        async with other:
            # From another address too: the account itself is blocked.
            held = await other.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
            assert held.status_code == 429
            statuses.append(held.status_code)
            # The wait ends (the deadline below only stops a broken test from hanging).
            deadline = time.monotonic() + 30
            while True:
                answer = await other.post(
                    "/v1/auth/login", json={"email": email, "password": PASSWORD}
                )
                if answer.status_code == 200:
                    break
                statuses.append(answer.status_code)
                assert answer.status_code == 429 and time.monotonic() < deadline
                await asyncio.sleep(float(answer.headers["Retry-After"]))

        # An unknown email is throttled the same way: the answer tells nothing about it.
        for _ in range(7):
            nobody = await control.client.post(
                "/v1/auth/login", json={"email": "nobody@example.test", "password": "x"}
            )
            statuses.append(nobody.status_code)
        assert nobody.status_code == 429

        metrics = (await control.client.get("/metrics")).text
        counted = [
            f'tidecast_control_login_attempts_total{{outcome="{outcome}"}} {n}.0'
            for outcome, n in (
                ("failed", statuses.count(401)),
                ("throttled", statuses.count(429)),
                ("succeeded", 1),
            )
        ]
        assert all(line in metrics for line in counted), (counted, metrics)


async def add_user(control: ControlPlane, tenant: str, email: str) -> None:
    await control.member(tenant, email, "viewer")
