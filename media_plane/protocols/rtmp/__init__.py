"""RTMP ingest: pure handshake, chunk, AMF0 and FLV parsing, and an asyncio server."""

from media_plane.protocols.rtmp.errors import RtmpProtocolError
from media_plane.protocols.rtmp.server import RtmpServer

__all__ = ["RtmpProtocolError", "RtmpServer"]
