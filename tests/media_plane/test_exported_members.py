"""Each media-plane package's public surface; changing one should be a visible decision."""

from __future__ import annotations

import importlib

import pytest

SURFACES = {
    "media_plane.codecs.h264": [
        "AccessUnit",
        "AnnexBConverter",
        "AvcDecoderConfiguration",
        "avc_config_dimensions",
        "avc_decoder_configuration",
        "parse_annexb",
        "parse_avc_decoder_configuration",
        "sps_dimensions",
        "split_annexb",
    ],
    "media_plane.codecs.aac": ["AdtsFramer", "AudioSpecificConfig", "parse_audio_specific_config"],
    "media_plane.protocols.hls": ["LivePlaylist", "PlaylistSegment"],
    "media_plane.protocols.mpegts": ["MuxError", "TsSegmentMuxer", "UnsupportedTrackError"],
    "media_plane.protocols.rtmp": [
        "AmfDecodeError",
        "MediaFormatError",
        "RtmpProtocolError",
        "UnsupportedCodecError",
    ],
    "media_plane.protocols.webrtc": ["OfferError"],
    "media_plane.pipelines.remux": [
        "HlsOutput",
        "HlsOutputStats",
        "MuxedSegment",
        "PackagerStats",
        "SegmentStore",
        "Segmenter",
        "StoreStats",
    ],
    "media_plane.pipelines.transcode": ["OPUS_CLOCK", "HlsTranscoders", "OpusTranscoder"],
    "media_plane.reporting": ["EngineReporter", "StreamReport", "ViewerSessions"],
    "media_plane.servers.http": [
        "MAX_HEAD_BYTES",
        "AddressSlots",
        "BadRequestError",
        "ConnectionLimits",
        "Listener",
        "RequestHead",
        "parse_request_head",
    ],
    "media_plane.servers.rtmp": ["RtmpLimits", "RtmpServer", "SessionOptions"],
    "media_plane.servers.hls": [
        "DeliveryCallback",
        "HlsContent",
        "HlsHttpServer",
        "HlsHttpStats",
        "PlayAuthorization",
        "PlayAuthorizer",
    ],
    "media_plane.servers.webrtc": [
        "SIGNALING_LIMITS",
        "Answer",
        "IceRestartError",
        "OfferError",
        "PlayRefusedError",
        "PublishRefusedError",
        "SessionChangedError",
        "SessionNotFoundError",
        "SessionStart",
        "ViewerSessionLog",
        "WebRtcError",
        "WebRtcHttpServer",
        "WebRtcHttpStats",
        "WebRtcOptions",
        "WebRtcSessions",
        "WebRtcStats",
        "etag",
    ],
}


@pytest.mark.parametrize(("name", "surface"), SURFACES.items(), ids=list(SURFACES))
def test_public_surface_is_explicit(name: str, surface: list[str]) -> None:
    module = importlib.import_module(name)
    assert sorted(module.__all__) == sorted(surface)
    assert all(hasattr(module, item) for item in module.__all__)
