"""The single-node data directory: where `tidecast up` keeps state and credentials."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

DATA_DIR_ENV = "TIDECAST_DATA_DIR"
CREDENTIALS_FILE = "credentials.json"
SIGNING_KEY_FILE = "signing.key"


def resolve_data_dir(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit.expanduser().resolve()
    from_env = os.environ.get(DATA_DIR_ENV)
    if from_env:
        return Path(from_env).expanduser().resolve()
    return (Path.home() / ".tidecast").resolve()


def ensure_data_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _write_private(path: Path, content: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    tmp.replace(path)


def signing_secret(data_dir: Path) -> str:
    """A random secret generated on first start and kept in the data directory."""
    path = data_dir / SIGNING_KEY_FILE
    if path.exists():
        return path.read_text().strip()
    secret = secrets.token_urlsafe(48)
    _write_private(path, secret)
    return secret


@dataclass(frozen=True)
class LocalCredentials:
    api_url: str
    token: str
    admin_email: str
    admin_password: str


def read_credentials(data_dir: Path) -> LocalCredentials | None:
    path = data_dir / CREDENTIALS_FILE
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return LocalCredentials(**{k: data[k] for k in LocalCredentials.__dataclass_fields__})


def write_credentials(data_dir: Path, credentials: LocalCredentials) -> None:
    _write_private(data_dir / CREDENTIALS_FILE, json.dumps(asdict(credentials), indent=2))
