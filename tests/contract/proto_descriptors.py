"""Reads the proto contracts, as compiled into the generated ``tidecast.*_pb2`` modules, into
plain data: the snapshot that tests/contract/test_proto_compatibility.py guards.

    {"messages": {full name: {field: {"number", "type", "label", "oneof"}}},
     "enums":    {full name: {value: number}},
     "services": {full name: {rpc: {"input", "output", "client_streaming",
                                    "server_streaming"}}}}

Run ``scripts/update-proto-snapshot`` (``python -m tests.contract.proto_descriptors``) to
rewrite the checked-in snapshot after adding to the contracts.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

from google.protobuf import descriptor_pb2

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
SNAPSHOT = Path(__file__).resolve().parent / "proto_snapshot.json"

_FieldProto = descriptor_pb2.FieldDescriptorProto


def generated_modules() -> list[ModuleType]:
    """Every ``*_pb2`` module generated under proto/tidecast, imported."""
    names = sorted(
        ".".join(path.relative_to(PROTO_ROOT).with_suffix("").parts)
        for path in (PROTO_ROOT / "tidecast").rglob("*_pb2.py")
    )
    return [importlib.import_module(name) for name in names]


def _file_proto(module: ModuleType) -> descriptor_pb2.FileDescriptorProto:
    proto = descriptor_pb2.FileDescriptorProto()
    proto.ParseFromString(module.DESCRIPTOR.serialized_pb)
    return proto


def _field(
    field: descriptor_pb2.FieldDescriptorProto, message: descriptor_pb2.DescriptorProto
) -> dict[str, Any]:
    if field.type in (_FieldProto.TYPE_MESSAGE, _FieldProto.TYPE_ENUM):
        type_name = field.type_name.lstrip(".")
    else:
        type_name = _FieldProto.Type.Name(field.type).removeprefix("TYPE_").lower()
    if field.label == _FieldProto.LABEL_REPEATED:
        label = "repeated"
    elif field.label == _FieldProto.LABEL_REQUIRED:
        label = "required"
    elif field.proto3_optional:
        label = "optional"
    else:
        label = "singular"
    in_real_oneof = field.HasField("oneof_index") and not field.proto3_optional
    return {
        "number": field.number,
        "type": type_name,
        "label": label,
        "oneof": message.oneof_decl[field.oneof_index].name if in_real_oneof else "",
    }


def _enum(enum: descriptor_pb2.EnumDescriptorProto, prefix: str, out: dict[str, Any]) -> None:
    out["enums"][f"{prefix}.{enum.name}"] = {value.name: value.number for value in enum.value}


def _message(message: descriptor_pb2.DescriptorProto, prefix: str, out: dict[str, Any]) -> None:
    name = f"{prefix}.{message.name}"
    out["messages"][name] = {field.name: _field(field, message) for field in message.field}
    for nested in message.nested_type:
        _message(nested, name, out)
    for enum in message.enum_type:
        _enum(enum, name, out)


def describe() -> dict[str, Any]:
    """The current contracts as plain, JSON-ready data."""
    out: dict[str, Any] = {"messages": {}, "enums": {}, "services": {}}
    for module in generated_modules():
        file = _file_proto(module)
        for message in file.message_type:
            _message(message, file.package, out)
        for enum in file.enum_type:
            _enum(enum, file.package, out)
        for service in file.service:
            out["services"][f"{file.package}.{service.name}"] = {
                method.name: {
                    "input": method.input_type.lstrip("."),
                    "output": method.output_type.lstrip("."),
                    "client_streaming": method.client_streaming,
                    "server_streaming": method.server_streaming,
                }
                for method in service.method
            }
    return out


def render(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def main() -> None:
    SNAPSHOT.write_text(render(describe()))
    print(f"wrote {SNAPSHOT.relative_to(PROTO_ROOT.parent)}")  # noqa: T201


if __name__ == "__main__":
    main()
