"""Reads the compiled proto contracts into plain data, for snapshots and checks."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor, FileDescriptor

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
SNAPSHOT = Path(__file__).resolve().parent / "proto_snapshot.json"


def generated_modules() -> list[Any]:
    names = sorted(
        ".".join(path.relative_to(PROTO_ROOT).with_suffix("").parts)
        for path in PROTO_ROOT.rglob("*_pb2.py")
    )
    return [importlib.import_module(name) for name in names]


def _label(field: FieldDescriptor) -> str:
    # protobuf 7 dropped `label` in favour of is_repeated/is_required.
    if getattr(field, "is_repeated", False) or getattr(field, "label", 1) == 3:
        return "repeated"
    return "optional" if field.has_presence and not field.containing_oneof else "singular"


def _field_type(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return field.message_type.full_name
    if field.enum_type is not None:
        return field.enum_type.full_name
    return str(field.type)


def _message(descriptor: Descriptor, out: dict[str, Any]) -> None:
    out["messages"][descriptor.full_name] = {
        field.name: {
            "number": field.number,
            "type": _field_type(field),
            "label": _label(field),
            "oneof": field.containing_oneof.name if field.containing_oneof else "",
        }
        for field in descriptor.fields
    }
    for nested in descriptor.nested_types:
        _message(nested, out)
    for enum in descriptor.enum_types:
        _enum(enum, out)


def _enum(descriptor: EnumDescriptor, out: dict[str, Any]) -> None:
    out["enums"][descriptor.full_name] = {v.name: v.number for v in descriptor.values}


def describe() -> dict[str, Any]:
    out: dict[str, Any] = {"messages": {}, "enums": {}, "services": {}}
    for module in generated_modules():
        file: FileDescriptor = module.DESCRIPTOR
        for message in file.message_types_by_name.values():
            _message(message, out)
        for enum in file.enum_types_by_name.values():
            _enum(enum, out)
        for service in file.services_by_name.values():
            out["services"][service.full_name] = {
                method.name: {"input": method.input_type.full_name,
                              "output": method.output_type.full_name}
                for method in service.methods
            }
    return out
