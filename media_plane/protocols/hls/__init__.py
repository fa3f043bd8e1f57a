"""HLS wire formats: media playlists (RFC 8216). Pure."""

from media_plane.protocols.hls.playlist import LivePlaylist, PlaylistSegment

__all__ = ["LivePlaylist", "PlaylistSegment"]
