"""Every service, RPC, message, field, enum and enum value in the proto contracts carries a
leading comment: the .proto files are the only shared language between the planes."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc  # type: ignore[import-untyped]

from tests.contract.proto_descriptors import PROTO_ROOT

# Field numbers of the repeated fields in descriptor.proto, as used in SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

SourcePath = tuple[int, ...]


def compile_with_comments(out_dir: Path) -> list[descriptor_pb2.FileDescriptorProto]:
    """Compiles every .proto under proto/tidecast in process, keeping source comments."""
    sources = sorted(
        str(path.relative_to(PROTO_ROOT)) for path in (PROTO_ROOT / "tidecast").rglob("*.proto")
    )
    assert sources, f"no .proto files under {PROTO_ROOT / 'tidecast'}"
    out = out_dir / "contracts.binpb"
    well_known = resources.files("grpc_tools") / "_proto"
    arguments = [
        "grpc_tools.protoc",
        f"--proto_path={PROTO_ROOT}",
        f"--proto_path={well_known}",
        "--include_source_info",
        f"--descriptor_set_out={out}",
        *sources,
    ]
    assert protoc.main(arguments) == 0, "protoc failed (see captured stderr)"
    files = descriptor_pb2.FileDescriptorSet()
    files.ParseFromString(out.read_bytes())
    return list(files.file)


def _enum(
    enum: descriptor_pb2.EnumDescriptorProto, path: SourcePath, prefix: str
) -> Iterator[tuple[SourcePath, str]]:
    yield path, f"enum {prefix}{enum.name}"
    for i, value in enumerate(enum.value):
        yield (*path, _ENUM_VALUE, i), f"enum value {prefix}{enum.name}.{value.name}"


def _message(
    message: descriptor_pb2.DescriptorProto, path: SourcePath, prefix: str
) -> Iterator[tuple[SourcePath, str]]:
    if message.options.map_entry:  # synthesized for map<K, V> fields: no source of its own
        return
    name = f"{prefix}{message.name}"
    yield path, f"message {name}"
    for i, field in enumerate(message.field):
        yield (*path, _MESSAGE_FIELD, i), f"field {name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        yield from _message(nested, (*path, _MESSAGE_NESTED, i), f"{name}.")
    for i, enum in enumerate(message.enum_type):
        yield from _enum(enum, (*path, _MESSAGE_ENUM, i), f"{name}.")


def declarations(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[SourcePath, str]]:
    """(source path, description) of everything in ``file`` that needs a comment."""
    for i, message in enumerate(file.message_type):
        yield from _message(message, (_FILE_MESSAGE, i), "")
    for i, enum in enumerate(file.enum_type):
        yield from _enum(enum, (_FILE_ENUM, i), "")
    for i, service in enumerate(file.service):
        yield (_FILE_SERVICE, i), f"service {service.name}"
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"rpc {service.name}.{method.name}"


def undocumented(file: descriptor_pb2.FileDescriptorProto) -> list[str]:
    comments = {
        tuple(location.path): location.leading_comments.strip()
        for location in file.source_code_info.location
    }
    return [f"{file.name}: {what}" for path, what in declarations(file) if not comments.get(path)]


def test_every_declaration_has_a_leading_comment(tmp_path: Path) -> None:
    files = compile_with_comments(tmp_path)
    assert {file.name for file in files} >= {"tidecast/edge/v1/edge_control.proto"}
    missing = [entry for file in files for entry in undocumented(file)]
    assert not missing, "add a leading // comment to:\n  " + "\n  ".join(missing)


def test_a_declaration_without_a_leading_comment_is_named(tmp_path: Path) -> None:
    sample = descriptor_pb2.FileDescriptorProto(name="t.proto")
    message = sample.message_type.add(name="M")
    message.field.add(name="documented")
    message.field.add(name="bare")
    message.nested_type.add(name="Inner").field.add(name="deep")
    enum = sample.enum_type.add(name="E")
    enum.value.add(name="E_UNSPECIFIED")
    method = sample.service.add(name="S").method.add(name="Do")
    assert method.name == "Do"
    for path in [(4, 0), (4, 0, 2, 0), (4, 0, 3, 0), (5, 0), (6, 0)]:
        sample.source_code_info.location.add(path=path, leading_comments=" Says why.\n")
    sample.source_code_info.location.add(path=(4, 0, 2, 1), trailing_comments=" trailing\n")
    assert undocumented(sample) == [
        "t.proto: field M.bare",
        "t.proto: field M.Inner.deep",
        "t.proto: enum value E.E_UNSPECIFIED",
        "t.proto: rpc S.Do",
    ]
