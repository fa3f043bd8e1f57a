"""The passthrough pipeline: live streams remuxed into MPEG-TS segments and media playlists
in memory, read by the HLS server."""

from media_plane.pipelines.remux.output import HlsOutput, HlsOutputStats
from media_plane.pipelines.remux.packager import PackagerStats
from media_plane.pipelines.remux.segment_store import SegmentStore, StoreStats
from media_plane.pipelines.remux.segmenter import MuxedSegment, Segmenter

__all__ = [
    "HlsOutput",
    "HlsOutputStats",
    "MuxedSegment",
    "PackagerStats",
    "SegmentStore",
    "Segmenter",
    "StoreStats",
]
