"""The node's identity, stored in the state directory after enrollment."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

FILE_NAME = "node.json"


@dataclass(frozen=True)
class NodeCredentials:
    node_id: str
    credential: str
    cluster_id: str
    control_target: str


def load(state_dir: Path) -> NodeCredentials | None:
    path = state_dir / FILE_NAME
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return NodeCredentials(**{k: data[k] for k in NodeCredentials.__dataclass_fields__})


def store(state_dir: Path, credentials: NodeCredentials) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / FILE_NAME
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(credentials), handle)
    tmp.replace(path)


def forget(state_dir: Path) -> None:
    (state_dir / FILE_NAME).unlink(missing_ok=True)
