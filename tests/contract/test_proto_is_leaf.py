"""The proto contracts import downward only: a file imports google/protobuf/*, files of its
own area, and tidecast/common/*. So common imports nothing else of ours, and edge and events
may share common but never import each other."""

from __future__ import annotations

import re

from tests.contract.proto_descriptors import PROTO_ROOT

_IMPORT = re.compile(r'^\s*import\s+(?:(?:public|weak)\s+)?"(?P<path>[^"]+)"\s*;', re.MULTILINE)
SHARED_AREA = "common"


def import_violation(importer: str, imported: str) -> str | None:
    """Why ``importer`` (a path under proto/) may not import ``imported``, if it may not."""
    if imported.startswith("google/protobuf/"):
        return None
    parts = imported.split("/")
    if parts[0] != "tidecast" or len(parts) < 3:
        return f"{importer} imports {imported}: only google/protobuf/* and tidecast/* exist"
    own_area = importer.split("/")[1]
    if parts[1] in (own_area, SHARED_AREA):
        return None
    return f"{importer} imports {imported}: {own_area} may import only {own_area} and common"


def imports_of(source: str) -> list[str]:
    without_comments = re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.DOTALL)
    return [match["path"] for match in _IMPORT.finditer(without_comments)]


def test_proto_files_import_only_their_area_and_common() -> None:
    files = sorted((PROTO_ROOT / "tidecast").rglob("*.proto"))
    assert files, f"no .proto files under {PROTO_ROOT / 'tidecast'}"
    violations = [
        violation
        for path in files
        for imported in imports_of(path.read_text())
        if (violation := import_violation(str(path.relative_to(PROTO_ROOT)), imported))
    ]
    assert not violations, "proto imports against the layering:\n  " + "\n  ".join(violations)


def test_the_layering_rule() -> None:
    edge, events = "tidecast/edge/v1/edge_control.proto", "tidecast/events/v1/events.proto"
    common = "tidecast/common/v1/common.proto"
    assert import_violation(edge, "google/protobuf/timestamp.proto") is None
    assert import_violation(edge, common) is None
    assert import_violation(events, common) is None
    assert import_violation(events, "tidecast/events/v1/ingress.proto") is None
    assert import_violation(edge, events) is not None
    assert import_violation(events, "tidecast/edge/v1/edge_control.proto") is not None
    assert import_violation(common, edge) is not None
    assert import_violation(common, "vendor/thing.proto") is not None


def test_imports_are_read_from_statements_not_comments() -> None:
    source = (
        'syntax = "proto3";\n'
        '// import "tidecast/edge/v1/old.proto";\n'
        'import public "tidecast/common/v1/common.proto";\n'
        '  import "google/protobuf/empty.proto" ;\n'
        '/* import "tidecast/events/v1/events.proto"; */\n'
    )
    assert imports_of(source) == ["tidecast/common/v1/common.proto", "google/protobuf/empty.proto"]
