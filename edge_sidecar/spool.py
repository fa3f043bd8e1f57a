"""An append-only, on-disk spool of serialized events.

Events are appended as they happen and survive a sidecar restart; a shipper reads them in
order and acknowledges what the data plane has taken. Records are framed as

    length (u32 BE) | crc32 of payload (u32 BE) | class (u8) | sequence (u64 BE) | payload

in segment files named by the sequence number of their first record. A torn record at
the tail (a crash mid-write) is cut off when the spool is reopened.

The spool has a disk budget. When it is exceeded, the oldest segments are rewritten
without their health samples (`RecordClass.SAMPLE`), oldest first; lifecycle and viewer
events (`RecordClass.KEEP`) are never dropped, even if that means going over budget.
Sequence numbers are stored in each record, so dropping samples never renumbers what
remains and acknowledgements stay valid.
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

_HEADER = struct.Struct(">IIBQ")
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
    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = 4 * 1024 * 1024,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._dir = directory
        self._segment_bytes = segment_bytes
        self._max_bytes = max_bytes
        self._dir.mkdir(parents=True, exist_ok=True)
        self._acked = self._read_ack()
        self._next_sequence = self._recover()
        self._file = self._open_segment_for_append()
        self._disk_bytes = self._measure_disk()
        #: Health samples dropped to stay within the disk budget, since this spool opened.
        self.dropped_samples = 0
        #: Times the budget was exceeded with nothing left that may be dropped.
        self.over_budget = 0

    # -- writing ----------------------------------------------------------------------

    def append(self, payload: bytes, record_class: RecordClass = RecordClass.KEEP) -> int:
        if len(payload) > MAX_RECORD_BYTES:
            raise ValueError(f"event of {len(payload)} bytes exceeds {MAX_RECORD_BYTES}")
        if self._file.tell() >= self._segment_bytes:
            self._file.close()
            self._file = self._new_segment(self._next_sequence)
        sequence = self._next_sequence
        record = (
            _HEADER.pack(len(payload), zlib.crc32(payload), int(record_class), sequence) + payload
        )
        self._file.write(record)
        self._file.flush()
        self._next_sequence += 1
        self._disk_bytes += len(record)
        if self._disk_bytes > self._max_bytes:
            self._enforce_budget()
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
        """Sequence numbers not yet acknowledged (dropped samples included)."""
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
                self._disk_bytes -= path.stat().st_size
                path.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        return self._disk_bytes

    # -- internals --------------------------------------------------------------------

    def _enforce_budget(self) -> None:
        """Rewrites the oldest closed segments without health samples until within budget."""
        current = Path(self._file.name)
        for _start, path in self._segments():
            if self._disk_bytes <= self._max_bytes:
                return
            if path == current:
                break
            records = list(_parse(path.read_bytes()))
            kept = [r for r, _ in records if r.record_class is RecordClass.KEEP]
            dropped = sum(
                1
                for r, _ in records
                if r.record_class is RecordClass.SAMPLE and r.sequence >= self._acked
            )
            if len(kept) == len(records):
                continue
            before = path.stat().st_size
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as handle:
                for record in kept:
                    handle.write(
                        _HEADER.pack(
                            len(record.payload),
                            zlib.crc32(record.payload),
                            int(record.record_class),
                            record.sequence,
                        )
                    )
                    handle.write(record.payload)
            tmp.replace(path)
            self._disk_bytes -= before - path.stat().st_size
            self.dropped_samples += dropped
            logger.warning(
                "spool over its %d-byte budget: dropped %d health samples from %s",
                self._max_bytes,
                dropped,
                path.name,
            )
        if self._disk_bytes > self._max_bytes:
            self.over_budget += 1

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for path in self._dir.glob(f"*{_SUFFIX}"):
            try:
                found.append((int(path.stem), path))
            except ValueError:
                continue
        return sorted(found)

    def _measure_disk(self) -> int:
        return sum(path.stat().st_size for _, path in self._segments())

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
        next_sequence, valid_bytes = start, 0
        data = path.read_bytes()
        for record, end in _parse(data):
            next_sequence = record.sequence + 1
            valid_bytes = end
        if valid_bytes < len(data):
            logger.warning("spool %s: cutting %d torn bytes", path.name, len(data) - valid_bytes)
            with open(path, "r+b") as handle:
                handle.truncate(valid_bytes)
        return max(next_sequence, self._acked)

    def _iter_from(self, first: int) -> Iterator[SpooledRecord]:
        self._file.flush()
        segments = self._segments()
        for index, (_start, path) in enumerate(segments):
            next_start = segments[index + 1][0] if index + 1 < len(segments) else None
            if next_start is not None and next_start <= first:
                continue
            for record, _end in _parse(path.read_bytes()):
                if record.sequence >= first:
                    yield record


def _parse(data: bytes) -> Iterator[tuple[SpooledRecord, int]]:
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc, record_class, sequence = _HEADER.unpack_from(data, offset)
        end = offset + _HEADER.size + length
        if length > MAX_RECORD_BYTES or end > len(data):
            return
        payload = data[offset + _HEADER.size : end]
        if zlib.crc32(payload) != crc or record_class not in (0, 1):
            return
        yield SpooledRecord(sequence, RecordClass(record_class), payload), end
        offset = end
