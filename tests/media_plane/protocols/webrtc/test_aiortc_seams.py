"""The private aiortc/aioice attributes the edge relies on still exist (fails on upgrade)."""

from __future__ import annotations

import inspect

import aioice.ice
import pytest
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpsender import RTCRtpSender as SenderClass

from media_plane.protocols.webrtc._aiortc_seams import (
    install_opus_packer,
    offer_host_addresses,
    sender_encoder,
)


@pytest.mark.asyncio(loop_scope="function")
async def test_the_seams_are_where_the_edge_expects_them() -> None:
    pc = RTCPeerConnection()
    try:
        transceiver = pc.addTransceiver("audio", direction="sendrecv")
        receiver: RTCRtpReceiver = transceiver.receiver
        assert hasattr(receiver, "_RTCRtpReceiver__decoder_queue")
        assert hasattr(receiver, "_send_rtcp_pli")
        sender: RTCRtpSender = transceiver.sender
        assert hasattr(sender, "_RTCRtpSender__encoder")
        assert "_send_keyframe" in vars(SenderClass)
        # The sender creates an encoder only when it has none, which is what lets a packer
        # stand in for aiortc's OpusEncoder.
        assert "if self.__encoder is None" in inspect.getsource(SenderClass._next_encoded_frame)
        install_opus_packer(sender)
        assert getattr(sender_encoder(sender), "codec", None) is None
        connection = transceiver.sender.transport.transport.iceGatherer._connection
        assert isinstance(connection, aioice.ice.Connection)
        offer_host_addresses(pc, ["127.0.0.1"])
        await pc.setLocalDescription(await pc.createOffer())
        candidates = [c for c in pc.localDescription.sdp.splitlines() if "candidate:" in c]
        assert candidates and all(" 127.0.0.1 " in line for line in candidates)
    finally:
        await pc.close()
