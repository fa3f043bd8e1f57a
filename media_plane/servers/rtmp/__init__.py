"""The edge's RTMP ingest server: one asyncio session per publisher over the pure
`protocols.rtmp` wire formats, feeding the stream registry."""

from media_plane.servers.rtmp.limits import RtmpLimits
from media_plane.servers.rtmp.server import RtmpServer
from media_plane.servers.rtmp.session import SessionOptions

__all__ = ["RtmpLimits", "RtmpServer", "SessionOptions"]
