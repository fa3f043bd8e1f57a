"""An append-only, on-disk spool of serialized events.

Events are appended as they happen and survive a sidecar restart; a shipper reads them in
order and acknowledges what the data plane has taken. Records are framed as

    length (u32 BE) | crc32 of payload (u32 BE) | class (u8) | payload

in segment files named by the sequence number of their first record. A torn record at
the tail (a crash mid-write) is cut off when the spool is reopened.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

logger = logging.getLogger(__name__)

_HEADER = struct.Struct(">IIB")
_SUFFIX = ".log"
_ACK_FILE = "acked"
MAX_RECORD_BYTES = 1024 * 1024


class RecordClass(IntEnum):
    #: Must never be dropped (lifecycle, viewer sessions).
    KEEP = 1
    #: May be dropped first when the disk budget runs out (health samples).
    SAMPLE = 0


@dataclass(frozen=True, slots=True)
class SpooledRecord:
    sequence: int
    record_class: RecordClass
    payload: bytes


class EventSpool:
    def __init__(self, directory: Path, *, segment_bytes: int = 4 * 1024 * 1024) -> None:
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._dir.mkdir(parents=True, exist_ok=True)
        self._acked = self._read_ack()
        self._next_sequence = self._recover()
        self._file = self._open_segment_for_append()

    # -- writing ----------------------------------------------------------------------

    def append(self, payload: bytes, record_class: RecordClass = RecordClass.KEEP) -> int:
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"event of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        if self._file.tell() >= self._segment_bytes:
            self._file.close()
            self._file = self._new_segment(self._next_sequence)
        header = _HEADER.pack(len(payload), zlib.crc32(payload), int(record_class))
        self._file.write(header + payload)
        self._file.flush()
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    def sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    # -- reading ----------------------------------------------------------------------

    @property
    def acked(self) -> int:
        """Every record with a sequence below this has been acknowledged."""
        return self._acked

    @property
    def next_sequence(self) -> int:
        return self._next_sequence

    def pending(self) -> int:
        return self._next_sequence - self._acked

    def read(self, max_records: int) -> list[SpooledRecord]:
        """The oldest unacknowledged records, in order."""
        out: list[SpooledRecord] = []
        for record in self._iter_from(self._acked):
            out.append(record)
            if len(out) >= max_records:
                break
        return out

    def ack(self, up_to_sequence: int) -> None:
        """Acknowledges every record below `up_to_sequence` and deletes spent segments."""
        if up_to_sequence <= self._acked:
            return
        self._acked = min(up_to_sequence, self._next_sequence)
        tmp = self._dir / (_ACK_FILE + ".tmp")
        tmp.write_text(str(self._acked))
        tmp.replace(self._dir / _ACK_FILE)
        segments = self._segments()
        for index, (start, path) in enumerate(segments[:-1]):
            next_start = segments[index + 1][0]
            if next_start <= self._acked and start < self._acked:
                path.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        return sum(path.stat().st_size for _, path in self._segments())

    # -- internals --------------------------------------------------------------------

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._dir.glob(f"*{_SUFFIX}"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    def _new_segment(self, first_sequence: int) -> io.BufferedWriter:
        return open(self._dir / f"{first_sequence:020d}{_SUFFIX}", "ab")

    def _open_segment_for_append(self) -> io.BufferedWriter:
        segments = self._segments()
        if not segments:
            return self._new_segment(self._next_sequence)
        return open(segments[-1][1], "ab")

    def _read_ack(self) -> int:
        path = self._dir / _ACK_FILE
        try:
            return int(path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _recover(self) -> int:
        """Finds the next sequence number and cuts a torn tail off the last segment."""
        segments = self._segments()
        if not segments:
            return self._acked
        start, path = segments[-1]
        sequence, valid_bytes = start, 0
        data = path.read_bytes()
        for _record, end in _parse(data, start):
            sequence += 1
            valid_bytes = end
        if valid_bytes < len(data):
            logger.warning("spool %s: cutting %d torn bytes", path.name, len(data) - valid_bytes)
            with open(path, "r+b") as handle:
                handle.truncate(valid_bytes)
        return max(sequence, self._acked)

    def _iter_from(self, first: int) -> Iterator[SpooledRecord]:
        self._file.flush()
        segments = self._segments()
        for index, (start, path) in enumerate(segments):
            next_start = segments[index + 1][0] if index + 1 < len(segments) else None
            if next_start is not None and next_start <= first:
                continue
            for record, _end in _parse(path.read_bytes(), start):
                if record.sequence >= first:
                    yield record


def _parse(data: bytes, first_sequence: int) -> Iterator[tuple[SpooledRecord, int]]:
    offset, sequence = 0, first_sequence
    while offset + _HEADER.size <= len(data):
        length, crc, record_class = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if length > MAX_RECORD_BYTES or end > len(data):
            return
        payload = data[offset + _HEADER.size : end]
        if zlib.crc32(payload) != crc or record_class not in (0, 1):
            return
        yield SpooledRecord(sequence, RecordClass(record_class), payload), end
        offset, sequence = end, sequence + 1
