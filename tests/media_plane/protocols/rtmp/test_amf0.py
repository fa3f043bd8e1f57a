from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media_plane.protocols.rtmp import amf0
from media_plane.protocols.rtmp.amf0 import UNDEFINED, AmfDate, AmfValue, EcmaArray, Marker
from media_plane.protocols.rtmp.errors import AmfDecodeError


def test_the_connect_command_ffmpeg_sends_round_trips() -> None:
    values: list[AmfValue] = [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
            "tcUrl": "rtmp://127.0.0.1:1935/live",
        },
    ]
    assert amf0.decode_all(amf0.encode(*values)) == values


def test_known_bytes_decode() -> None:
    # number 1.0, null, string "ab", boolean true, object {a: 2.0}, undefined
    data = bytes.fromhex("003ff000000000000005020002616201010300016100400000000000000000000906")
    assert amf0.decode_all(data) == [1.0, None, "ab", True, {"a": 2.0}, UNDEFINED]


def test_every_type_encodes_to_its_marker() -> None:
    cases: list[tuple[AmfValue, Marker]] = [
        (1.5, Marker.NUMBER),
        (False, Marker.BOOLEAN),
        ("s", Marker.STRING),
        ("x" * 70_000, Marker.LONG_STRING),
        ({"k": 1.0}, Marker.OBJECT),
        (EcmaArray(k=1.0), Marker.ECMA_ARRAY),
        ([1.0], Marker.STRICT_ARRAY),
        (AmfDate(1.0), Marker.DATE),
        (None, Marker.NULL),
        (UNDEFINED, Marker.UNDEFINED),
    ]
    for value, marker in cases:
        encoded = amf0.encode(value)
        assert encoded[0] == marker
        assert amf0.decode_all(encoded) == [value]


def test_ecma_arrays_stay_ecma_arrays() -> None:
    # onMetaData as FFmpeg writes it: an ECMA array whose count is only a hint.
    data = (
        bytes([Marker.ECMA_ARRAY])
        + (99).to_bytes(4, "big")
        + b"\x00\x05width"
        + bytes([Marker.NUMBER])
        + bytes.fromhex("4074000000000000")  # 320.0
        + b"\x00\x00\x09"
    )
    [value] = amf0.decode_all(data)
    assert isinstance(value, EcmaArray)
    assert value == {"width": 320.0}
    assert amf0.encode(value) == data.replace((99).to_bytes(4, "big"), (1).to_bytes(4, "big"))


def test_dates_keep_their_timezone_and_long_strings_their_text() -> None:
    values: list[AmfValue] = [AmfDate(1_700_000_000_000.0, -60), "é" * 40_000, [1.0, "a", None]]
    assert amf0.decode_all(amf0.encode(*values)) == values


def test_integers_encode_as_numbers() -> None:
    assert amf0.decode_all(amf0.encode(3)) == [3.0]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\x00\x3f", "truncated"),  # number cut short
        (b"\x02\x00\x05ab", "truncated"),  # string shorter than its length
        (b"\x0c\xff\xff\xff\xffab", "truncated"),  # long string claiming 4 GiB
        (b"\x03\x00\x01a\x05", "truncated"),  # object that just stops
        (b"\x03\x00\x01a\x05\x00\x00\x05", "end marker"),  # wrong terminator
        (b"\x09", "object end"),  # object end on its own
        (b"\x07\x00\x01", "unsupported"),  # reference
        (b"\x11\x00", "unsupported"),  # AMF3 switch
        (b"\x0a\xff\xff\xff\xff", "strict array"),  # 4 billion items
        (b"\x02\x00\x02\xff\xfe", "UTF-8"),
        (b"\x0b\x00\x00", "truncated"),  # date cut short
    ],
)
def test_malformed_data_raises_decode_errors(data: bytes, error: str) -> None:
    with pytest.raises(AmfDecodeError, match=error):
        amf0.decode_all(data)


def test_deep_nesting_is_refused_without_recursing_far() -> None:
    with pytest.raises(AmfDecodeError, match="deep"):
        amf0.decode_all(b"\x0a\x00\x00\x00\x01" * 10_000 + b"\x05")
    nested: AmfValue = None
    for _ in range(amf0.MAX_DEPTH):
        nested = [nested]
    assert amf0.decode_all(amf0.encode(nested)) == [nested]
    with pytest.raises(ValueError):
        amf0.encode([nested])


def test_values_that_amf0_cannot_carry_are_refused_by_the_encoder() -> None:
    with pytest.raises(TypeError):
        amf0.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        amf0.encode({"": 1.0})  # an empty name would end the object


amf_values: st.SearchStrategy[AmfValue] = st.recursive(
    st.none()
    | st.just(UNDEFINED)
    | st.booleans()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-32768, 32767)),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4)
        | st.dictionaries(st.text(min_size=1, max_size=8), children, max_size=4).map(EcmaArray)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(amf_values, max_size=5))
def test_encoded_values_decode_to_themselves(values: list[AmfValue]) -> None:
    back = amf0.decode_all(amf0.encode(*values))
    assert back == values
    assert [type(v) for v in back] == [type(v) for v in values]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_decode_errors(data: bytes) -> None:
    try:
        values = amf0.decode_all(data)
    except AmfDecodeError:
        return
    # Whatever decodes re-encodes, to the same values (NaN is not equal to itself).
    again = amf0.decode_all(amf0.encode(*values))
    if "nan" not in repr(values):
        assert again == values


@settings(max_examples=200, deadline=None)
@given(st.lists(amf_values, min_size=1, max_size=3), st.data())
def test_truncated_encodings_only_raise_decode_errors(
    values: list[AmfValue], data: st.DataObject
) -> None:
    encoded = amf0.encode(*values)
    end = data.draw(st.integers(0, len(encoded) - 1))
    with contextlib.suppress(AmfDecodeError):
        amf0.decode_all(encoded[:end])
