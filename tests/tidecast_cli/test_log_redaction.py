"""Log lines lose every secret they hold, whatever logged them and in whatever shape."""

from __future__ import annotations

import logging
import sys

from control_plane.auth.tokens import API_TOKEN_PREFIX
from control_plane.ids import new_secret
from control_plane.signed_tokens import encode_signed_token
from tidecast_cli.log_redaction import REDACTED, RedactingFormatter, redact


def test_every_secret_shape_the_control_plane_mints_is_redacted() -> None:
    minted = [new_secret(prefix, 32) for prefix in ("sk", "rt", "et", "nc")]
    minted.append(new_secret("sk"))
    minted.append(f"{API_TOKEN_PREFIX}{'0a' * 16}.{new_secret('s', 32)[2:]}")
    minted.append(encode_signed_token("viewer", "play", "x" * 40, 60)[0])
    for secret in minted:
        line = redact(f"refused {secret} (from 127.0.0.1)")
        assert secret not in line and REDACTED in line and "127.0.0.1" in line


def test_secrets_in_urls_and_headers_are_redacted_whatever_their_shape() -> None:
    assert redact("rtmp://h/live/mykey?x=1") == f"rtmp://h/live/{REDACTED}?x=1"
    assert redact("POST /whip/typo-key failed") == f"POST /whip/{REDACTED} failed"
    assert redact("DELETE /whip/session/abc") == "DELETE /whip/session/abc"
    assert (
        redact("GET /hls/p/index.m3u8?token=abc&x=1")
        == f"GET /hls/p/index.m3u8?token={REDACTED}&x=1"
    )
    assert redact("rtmp://h/live?key=K") == f"rtmp://h/live?key={REDACTED}"
    assert redact("Authorization: Bearer abc.def") == f"Authorization: Bearer {REDACTED}"
    assert (
        redact("wss://h/v1/realtime?access_token=t1")
        == f"wss://h/v1/realtime?access_token={REDACTED}"
    )


def test_the_formatter_redacts_messages_arguments_and_tracebacks() -> None:
    key = new_secret("sk")
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "publish %s failed", (key,), exc_info=sys.exc_info()
        )
    line = RedactingFormatter("%(message)s").format(record)
    assert key not in line and line.count(REDACTED) == 2
