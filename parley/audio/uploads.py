"""Which recording the transcription endpoint is sent: the file as it came, when the endpoint takes its
container and it is the smaller of the two, otherwise the WAV the model hears.

A voice note's OGG/Opus is a tenth of its 16 kHz WAV. Sending it as it came means the turn's WAV is needed
only until the reply's request is written, not for the whole transcription as well, and the upload is a
tenth as long. The endpoint names its formats by file extension and decodes what it is given: the name sent
is the one the bytes really are, never the one the sender claimed. Nothing is written anywhere: the bytes
are the ones the turn already holds.
"""

from __future__ import annotations

from parley.audio.wav import WavAudio

Upload = tuple[str, bytes, str]
"""What the openai SDK takes as a file: (name, bytes, content type)."""

_TAKEN = {
    "flac": "audio/flac",
    "m4a": "audio/mp4",
    "mp3": "audio/mpeg",
    "mp4": "audio/mp4",
    "ogg": "audio/ogg",
    "wav": "audio/wav",
    "webm": "audio/webm",
}
"""The transcription endpoint's formats that recordings come in, by extension, with their content types
(its list also names mpeg and mpga, which are MP3 under other names)."""

_OTHER_MP4_BRANDS = (b"qt  ", b"3gp", b"3g2")
"""MP4-family brands outside the endpoint's list (QuickTime, 3GPP): sent as WAV."""


def _mpeg_audio(data: bytes, at: int) -> bool:
    """An MPEG audio layer I-III frame header at `at` (ADTS, AAC's stream format, has layer bits 00)."""
    return len(data) >= at + 4 and data[at] == 0xFF and data[at + 1] & 0xE0 == 0xE0 and data[at + 1] & 0x06 != 0


def _id3_end(data: bytes) -> int:
    """Where the audio after an ID3v2 tag starts (0 without a tag)."""
    if not data.startswith(b"ID3") or len(data) < 10:
        return 0
    size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
    return 10 + size + (10 if data[5] & 0x10 else 0)  # a footer, when flagged, repeats the header


def container(data: bytes) -> str | None:
    """The extension the endpoint knows this recording's container by, from its first bytes; None for a
    container it does not take (ADTS AAC, QuickTime, 3GPP, Matroska, AMR, AIFF, CAF, …)."""
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"OggS"):
        return "ogg"
    if data.startswith(b"fLaC"):
        return "flac"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand.startswith(_OTHER_MP4_BRANDS):
            return None
        return "m4a" if brand == b"M4A " else "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM, or Matroska, which the endpoint does not list
        return "webm" if b"webm" in data[:64] else None
    if _mpeg_audio(data, _id3_end(data)):
        return "mp3"
    return None


def for_transcription(original: bytes, wav: WavAudio) -> Upload:
    """The file to send the transcription endpoint: `original` as it came when the endpoint takes its
    container and it is no larger than `wav` (a video note's or an uncompressed file's would be), else `wav`."""
    ext = container(original)
    if ext is not None and len(original) <= len(wav.data):
        return f"voice.{ext}", original, _TAKEN[ext]
    return "voice.wav", wav.data, _TAKEN["wav"]
