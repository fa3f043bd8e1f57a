"""What the engine does to a live stream between ingest and delivery: the passthrough
remux into HLS segments (`remux`) and the transcodes a codec change needs (`transcode`:
AAC -> Opus for WHEP viewers, WHIP's VP8/Opus -> H.264/AAC for HLS). The ABR ladder
belongs here too.
"""
