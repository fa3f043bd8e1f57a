"""Proto contracts only grow: no field, value or RPC removed, renumbered or retyped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.contract.proto_descriptors import PROTO_ROOT, SNAPSHOT, describe


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    for name, fields in old["messages"].items():
        current = new["messages"].get(name)
        if current is None:
            problems.append(f"message {name} removed")
            continue
        numbers = {f["number"]: field for field, f in current.items()}
        for field, spec in fields.items():
            now = current.get(field)
            if now is None:
                problems.append(f"{name}.{field} (#{spec['number']}) removed")
            elif now["number"] != spec["number"]:
                problems.append(f"{name}.{field} renumbered {spec['number']} -> {now['number']}")
            elif (now["type"], now["label"]) != (spec["type"], spec["label"]):
                problems.append(f"{name}.{field} changed type or label")
            reuse = numbers.get(spec["number"])
            if reuse is not None and reuse != field:
                problems.append(f"{name} field number {spec['number']} reused by {reuse}")
    for name, values in old["enums"].items():
        current = new["enums"].get(name, {})
        for value, number in values.items():
            if current.get(value) != number:
                problems.append(f"enum {name}.{value} removed or renumbered")
    for name, methods in old["services"].items():
        current = new["services"].get(name, {})
        for method, spec in methods.items():
            if current.get(method) != spec:
                problems.append(f"rpc {name}.{method} removed or changed")
    return problems


def test_no_breaking_change_against_the_checked_in_snapshot() -> None:
    problems = breaking_changes(json.loads(SNAPSHOT.read_text()), describe())
    assert not problems, "breaking proto changes (add a v2 instead):\n" + "\n".join(problems)


def test_the_snapshot_records_everything_that_exists() -> None:
    recorded, current = json.loads(SNAPSHOT.read_text()), describe()
    assert recorded == current, "run scripts/update-proto-snapshot and commit the snapshot"


def test_the_checker_catches_removal_renumbering_and_reuse() -> None:
    old = {"messages": {"m.M": {"a": {"number": 1, "type": "9", "label": "singular",
                                      "oneof": ""}}},
           "enums": {"m.E": {"E_X": 1}}, "services": {"m.S": {"Do": {"input": "m.M",
                                                                     "output": "m.M"}}}}
    removed = {"messages": {"m.M": {}}, "enums": {"m.E": {}}, "services": {"m.S": {}}}
    assert len(breaking_changes(old, removed)) == 3
    renumbered = {"messages": {"m.M": {"a": {"number": 2, "type": "9", "label": "singular",
                                             "oneof": ""},
                                       "b": {"number": 1, "type": "9", "label": "singular",
                                             "oneof": ""}}},
                  "enums": old["enums"], "services": old["services"]}
    problems = breaking_changes(old, renumbered)
    assert any("renumbered" in p for p in problems) and any("reused" in p for p in problems)


def _compiled_with_comments(tmp_path: Path) -> Any:
    import grpc_tools
    from google.protobuf import descriptor_pb2
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out = tmp_path / "contracts.pb"
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    include = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", "--include_source_info",
                        "--include_imports", f"--descriptor_set_out={out}", *sources])
    assert code == 0
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(out.read_bytes())
    return [f for f in files.file if f.name.startswith("tidecast/")]


def test_every_service_rpc_message_field_and_enum_value_is_documented(
    tmp_path: Path,
) -> None:
    undocumented = []
    for file in _compiled_with_comments(tmp_path):
        comments = {tuple(loc.path): loc.leading_comments.strip()
                    for loc in file.source_code_info.location}

        def need(path: tuple[int, ...], what: str, file_name: str = file.name,
                 comments: dict[tuple[int, ...], str] = comments) -> None:
            if not comments.get(path):
                undocumented.append(f"{file_name}: {what}")

        for i, message in enumerate(file.message_type):
            need((4, i), f"message {message.name}")
            for j, field in enumerate(message.field):
                need((4, i, 2, j), f"field {message.name}.{field.name}")
        for i, enum in enumerate(file.enum_type):
            need((5, i), f"enum {enum.name}")
            for j, value in enumerate(enum.value):
                need((5, i, 2, j), f"enum value {value.name}")
        for i, service in enumerate(file.service):
            need((6, i), f"service {service.name}")
            for j, method in enumerate(service.method):
                need((6, i, 2, j), f"rpc {service.name}.{method.name}")
    assert not undocumented, "undocumented:\n" + "\n".join(undocumented)


def test_proto_files_import_only_downward() -> None:
    """common imports nothing of ours; edge and events may import common, not each other."""
    for path in PROTO_ROOT.rglob("*.proto"):
        area = path.relative_to(PROTO_ROOT).parts[1]
        for imported in re.findall(r'^import "([^"]+)";', path.read_text(), re.MULTILINE):
            if imported.startswith("google/protobuf/"):
                continue
            parts = imported.split("/")
            assert parts[0] == "tidecast", imported
            allowed = {area} | ({"common"} if area != "common" else set())
            assert parts[1] in allowed, f"{path.name} imports {imported}"
