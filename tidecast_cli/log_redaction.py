"""Every log line the platform writes passes through here, so no secret reaches a log.

The protocol servers and third-party libraries (httpx, uvicorn, aiortc, grpc) log URLs,
headers and exception messages that can carry a stream key (`/live/<key>`, `/whip/<key>`,
`?key=`), a playback token (`?token=`) or a bearer credential. Rather than trusting every
call site, the one formatter the CLI installs on the root handler rewrites each finished
line, traceback included.
"""

from __future__ import annotations

import logging
import re

__all__ = ["REDACTED", "RedactingFormatter", "configure_logging", "redact"]

REDACTED = "<redacted>"

_SECRET_CHARS = r"[A-Za-z0-9_\-]"

#: The shapes of the secrets the control plane mints (control_plane/ids.py new_secret and
#: control_plane/auth/tokens.py): stream keys sk_, refresh tokens rt_, enrollment tokens
#: et_, node credentials nc_, API tokens tc_<id>.<secret>, and signed (JWT) tokens.
_MINTED = re.compile(
    rf"\b(?:sk|rt|et|nc)_{_SECRET_CHARS}{{16,}}"
    rf"|\btc_[0-9a-f]{{32}}\.{_SECRET_CHARS}+"
    rf"|\beyJ{_SECRET_CHARS}+\.{_SECRET_CHARS}+\.{_SECRET_CHARS}+"
)

#: Secrets a client may send in a shape we did not mint (a mistyped key is still close to
#: the real one): the value of a credential query parameter or an Authorization header,
#: and the path segment after the routes that take a stream key.
_CARRIERS = re.compile(
    r"(?P<lead>[?&;](?:key|token|access_token|stream_key|passphrase|streamid)=)[^&\s\"']+"
    r"|(?P<auth>\b(?:Bearer|Basic)\s+)[^\s\"',]+"
    r"|(?P<path>/(?:live|whip)/)(?!session/)[^/?\s\"']+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by `REDACTED`."""
    text = _MINTED.sub(REDACTED, text)
    return _CARRIERS.sub(_keep_lead, text)


def _keep_lead(match: re.Match[str]) -> str:
    lead = match.group("lead") or match.group("auth") or match.group("path") or ""
    return lead + REDACTED


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Root logging for every `tidecast` command that runs a service."""
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter(_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
