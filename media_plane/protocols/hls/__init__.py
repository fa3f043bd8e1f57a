"""HLS packaging: live streams remuxed into MPEG-TS segments and media playlists in memory."""

from media_plane.protocols.hls.output import HlsOutput, HlsOutputStats
from media_plane.protocols.hls.packager import PackagerStats
from media_plane.protocols.hls.playlist import LivePlaylist, PlaylistSegment
from media_plane.protocols.hls.segment_store import SegmentStore, StoreStats
from media_plane.protocols.hls.segmenter import MuxedSegment, Segmenter

__all__ = [
    "HlsOutput",
    "HlsOutputStats",
    "LivePlaylist",
    "MuxedSegment",
    "PackagerStats",
    "PlaylistSegment",
    "SegmentStore",
    "Segmenter",
    "StoreStats",
]
