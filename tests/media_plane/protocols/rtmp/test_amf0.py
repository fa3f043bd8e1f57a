from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.errors import AmfDecodeError, RtmpProtocolError


def test_connect_command_round_trips() -> None:
    values = [
        "connect",
        1.0,
        {
            "app": "live",
            "tcUrl": "rtmp://h/live",
            "fpad": False,
            "capabilities": 15.0,
            "videoFunction": 1.0,
        },
    ]
    assert amf0.decode_all(amf0.encode(*values)) == values


def test_known_bytes_decode() -> None:
    # number 1.0, null, string "ab", boolean true, object {a: 2.0}
    data = bytes.fromhex("003ff0000000000000050200026162010103000161004000000000000000000009")
    assert amf0.decode_all(data) == [1.0, None, "ab", True, {"a": 2.0}]


def test_ecma_and_strict_arrays_dates_and_long_strings() -> None:
    ecma = (
        bytes([amf0.ECMA_ARRAY])
        + (1).to_bytes(4, "big")
        + b"\x00\x01k"
        + bytes([amf0.STRING])
        + b"\x00\x01v"
        + b"\x00\x00\x09"
    )
    assert amf0.decode_all(ecma) == [{"k": "v"}]
    long_text = "x" * 70_000
    assert amf0.decode_all(amf0.encode(long_text, [1.0, "a"], amf0.AmfDate(5.0, 0))) == [
        long_text,
        [1.0, "a"],
        amf0.AmfDate(5.0, 0),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x3f",  # truncated number
        b"\x02\x00\x05ab",  # string shorter than its length
        b"\x03\x00\x01a\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # object missing its end
        b"\x0d",  # unsupported marker
        b"\x0a\xff\xff\xff\xff",  # strict array claiming 4 billion items
        b"\x02\x00\x02\xff\xfe",  # invalid UTF-8
    ],
)
def test_malformed_data_raises_decode_errors(data: bytes) -> None:
    with pytest.raises(AmfDecodeError):
        amf0.decode_all(data)


def test_deep_nesting_is_refused() -> None:
    data = b"\x0a\x00\x00\x00\x01" * 100 + b"\x05"
    with pytest.raises(AmfDecodeError):
        amf0.decode_all(data)


amf_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(amf_values, max_size=5))
def test_encoded_values_decode_to_themselves(values: list[Any]) -> None:
    assert amf0.decode_all(amf0.encode(*values)) == values


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_raise_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(RtmpProtocolError):
        amf0.decode_all(data)
