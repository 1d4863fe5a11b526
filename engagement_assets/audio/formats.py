"""What a recording really is, from its first bytes: some ALL mechanics upload WebM/Opus under `.wav`."""

from __future__ import annotations

SNIFF_BYTES = 12

WAV = "wav"
WEBM = "webm"
OGG = "ogg"
MP3 = "mp3"
FLAC = "flac"
EMPTY = "empty"
UNKNOWN = "unknown"


def sniff_format(head: bytes) -> str:
    """The container format named by a file's first bytes (at least SNIFF_BYTES of them)."""
    if not head:
        return EMPTY
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return WEBM
    if head[:4] == b"OggS":
        return OGG
    if head[:4] == b"fLaC":
        return FLAC
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return MP3
    return UNKNOWN
