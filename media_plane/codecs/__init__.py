"""Codec helpers, each written once: H.264 (AVCC/Annex B, decoder configuration, SPS size),
AAC (AudioSpecificConfig, ADTS) and VP8 (keyframe and size). Pure; every protocol,
pipeline and server that needs one uses these.
"""
