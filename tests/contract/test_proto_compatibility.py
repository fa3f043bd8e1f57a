"""Proto contracts only grow. Against the checked-in snapshot, no message, field, enum
value, service or RPC may be removed, renumbered, retyped or relabelled; and the snapshot
must record everything the contracts have, so that every addition is guarded from then on.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.contract.proto_descriptors import SNAPSHOT, describe

UPDATE_HINT = "run scripts/update-proto-snapshot and commit tests/contract/proto_snapshot.json"


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What ``new`` breaks of ``old``; additions break nothing."""
    problems: list[str] = []
    for name, fields in old["messages"].items():
        current = new["messages"].get(name)
        if current is None:
            problems.append(f"message {name} removed")
            continue
        by_number = {spec["number"]: field for field, spec in current.items()}
        for field, spec in fields.items():
            now = current.get(field)
            if now is None:
                problems.append(f"field {name}.{field} (#{spec['number']}) removed")
                reuse = by_number.get(spec["number"])
                if reuse is not None:
                    problems.append(f"field number {name} #{spec['number']} reused by {reuse}")
                continue
            for key in ("number", "type", "label", "oneof"):
                if now[key] != spec[key]:
                    problems.append(
                        f"field {name}.{field} changed {key}: {spec[key]!r} -> {now[key]!r}"
                    )
    for name, values in old["enums"].items():
        current = new["enums"].get(name)
        if current is None:
            problems.append(f"enum {name} removed")
            continue
        for value, number in values.items():
            if value not in current:
                problems.append(f"enum value {name}.{value} (= {number}) removed")
            elif current[value] != number:
                problems.append(
                    f"enum value {name}.{value} renumbered {number} -> {current[value]}"
                )
    for name, methods in old["services"].items():
        current = new["services"].get(name)
        if current is None:
            problems.append(f"service {name} removed")
            continue
        for method, spec in methods.items():
            if method not in current:
                problems.append(f"rpc {name}.{method} removed")
            elif current[method] != spec:
                problems.append(f"rpc {name}.{method} changed: {spec} -> {current[method]}")
    return problems


def unrecorded(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What ``new`` has that the snapshot ``old`` does not record."""
    missing: list[str] = []
    for kind, what in (("messages", "field"), ("enums", "enum value"), ("services", "rpc")):
        for name, members in new[kind].items():
            recorded = old[kind].get(name)
            if recorded is None:
                missing.append(f"{kind[:-1]} {name}")
                continue
            missing += [f"{what} {name}.{member}" for member in members if member not in recorded]
    return missing


def _snapshot() -> dict[str, Any]:
    assert SNAPSHOT.exists(), f"{SNAPSHOT.name} is missing: {UPDATE_HINT}"
    snapshot: dict[str, Any] = json.loads(SNAPSHOT.read_text())
    return snapshot


def test_no_contract_in_the_snapshot_was_broken() -> None:
    problems = breaking_changes(_snapshot(), describe())
    assert not problems, (
        "breaking proto changes against tests/contract/proto_snapshot.json (add new fields, "
        "values or RPCs, or a new package version, instead):\n  " + "\n  ".join(problems)
    )


def test_the_snapshot_records_every_current_contract() -> None:
    missing = unrecorded(_snapshot(), describe())
    assert not missing, f"the proto snapshot is out of date ({UPDATE_HINT}):\n  " + "\n  ".join(
        missing
    )


def test_the_contracts_are_found() -> None:
    current = describe()
    assert "tidecast.edge.v1.EdgeControl" in current["services"]
    assert "tidecast.events.v1.EventIngress" in current["services"]
    assert any(name.startswith("tidecast.common.v1.") for name in current["messages"])


_BASE: dict[str, Any] = {
    "messages": {
        "t.M": {
            "a": {"number": 1, "type": "string", "label": "singular", "oneof": ""},
            "b": {"number": 2, "type": "t.E", "label": "repeated", "oneof": ""},
        }
    },
    "enums": {"t.E": {"E_UNSPECIFIED": 0, "E_X": 1}},
    "services": {
        "t.S": {
            "Do": {
                "input": "t.M",
                "output": "t.M",
                "client_streaming": False,
                "server_streaming": False,
            }
        }
    },
}


def _changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(_BASE)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


def test_additions_break_nothing_but_must_be_recorded() -> None:
    grown = copy.deepcopy(_BASE)
    grown["messages"]["t.M"]["c"] = {"number": 3, "type": "int64", "label": "optional", "oneof": ""}
    grown["messages"]["t.N"] = {}
    grown["enums"]["t.E"]["E_Y"] = 2
    grown["services"]["t.S"]["Other"] = grown["services"]["t.S"]["Do"]
    assert breaking_changes(_BASE, grown) == []
    assert sorted(unrecorded(_BASE, grown)) == [
        "enum value t.E.E_Y",
        "field t.M.c",
        "message t.N",
        "rpc t.S.Other",
    ]
    assert unrecorded(_BASE, _BASE) == []


def test_removals_renumbering_retyping_and_relabelling_are_caught() -> None:
    field_a = ("messages", "t.M", "a")
    cases = {
        "message t.M removed": _changed(("messages", "t.M"), None),
        "field t.M.a (#1) removed": _changed(field_a, None),
        "field t.M.a changed number": _changed((*field_a, "number"), 7),
        "field t.M.a changed type": _changed((*field_a, "type"), "bytes"),
        "field t.M.a changed label": _changed((*field_a, "label"), "repeated"),
        "field t.M.a changed oneof": _changed((*field_a, "oneof"), "choice"),
        "enum t.E removed": _changed(("enums", "t.E"), None),
        "enum value t.E.E_X (= 1) removed": _changed(("enums", "t.E", "E_X"), None),
        "enum value t.E.E_X renumbered": _changed(("enums", "t.E", "E_X"), 5),
        "service t.S removed": _changed(("services", "t.S"), None),
        "rpc t.S.Do removed": _changed(("services", "t.S", "Do"), None),
        "rpc t.S.Do changed": _changed(("services", "t.S", "Do", "server_streaming"), True),
    }
    for expected, new in cases.items():
        problems = breaking_changes(_BASE, new)
        assert any(p.startswith(expected) for p in problems), (expected, problems)


def test_a_removed_field_number_taken_by_another_field_is_named() -> None:
    new = _changed(("messages", "t.M", "a"), None)
    new["messages"]["t.M"]["renamed"] = dict(_BASE["messages"]["t.M"]["a"])
    assert "field number t.M #1 reused by renamed" in breaking_changes(_BASE, new)
