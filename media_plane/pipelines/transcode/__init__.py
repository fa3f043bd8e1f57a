"""Transcodes where a protocol needs another codec than the publisher sent (PyAV on
threads): AAC -> Opus for WHEP viewers, and WHIP's VP8/Opus -> H.264/AAC for HLS."""

from media_plane.pipelines.transcode.hls_transcode import HlsTranscoders
from media_plane.pipelines.transcode.opus_transcoder import OPUS_CLOCK, OpusTranscoder

__all__ = ["OPUS_CLOCK", "HlsTranscoders", "OpusTranscoder"]
