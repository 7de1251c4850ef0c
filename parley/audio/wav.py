"""WAV in pure Python: the model takes and sends WAV, and its headers are parsed here, never by a codec."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from parley.errors import AudioError

# KSDATAFORMAT_SUBTYPE_PCM: the sub-format that makes a WAVE_FORMAT_EXTENSIBLE file plain PCM.
_PCM_GUID = bytes.fromhex("0100000000001000800000aa00389b71")


@dataclass(frozen=True, slots=True)
class PcmFormat:
    rate: int
    channels: int
    bits: int

    @property
    def bytes_per_second(self) -> int:
        return self.rate * self.channels * self.bits // 8


@dataclass(frozen=True, slots=True)
class WavAudio:
    """A WAV file with its decoded format, so callers never re-parse headers."""

    data: bytes
    format: PcmFormat
    pcm_offset: int
    pcm_bytes: int
    voice_ogg: bytes | None = None
    """The same audio as OGG/Opus, when it was decoded from Opus packets that could be kept: those packets in
    a file of their own (parley.audio.opus), a tenth of the WAV's size, for a service that takes a file
    (see parley.audio.uploads)."""

    @property
    def pcm(self) -> bytes:
        return self.data[self.pcm_offset : self.pcm_offset + self.pcm_bytes]

    @property
    def duration(self) -> float:
        return self.pcm_bytes / self.format.bytes_per_second if self.format.bytes_per_second else 0.0


def wav_from_pcm(pcm: bytes, fmt: PcmFormat) -> bytes:
    """A canonical 44-byte RIFF header whose sizes match the data exactly."""
    block_align = fmt.channels * fmt.bits // 8
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        1,
        fmt.channels,
        fmt.rate,
        fmt.rate * block_align,
        block_align,
        fmt.bits,
        b"data",
        len(pcm),
    )
    return header + pcm


def read_wav(data: bytes) -> WavAudio:
    """Parse a PCM WAV leniently: models and encoders often leave streaming placeholders in the sizes,
    so a data chunk whose size overruns the file is taken to end where the file ends."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError("not a RIFF/WAVE file")
    pos = 12
    fmt: PcmFormat | None = None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise AudioError("truncated fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag not in (1, 0xFFFE) or bits != 16 or channels < 1 or rate < 1:
                raise AudioError(f"unsupported WAV encoding (format {tag}, {bits} bit)")
            sub_format = data[body + 24 : body + 40] if size >= 40 else _PCM_GUID
            if tag == 0xFFFE and sub_format != _PCM_GUID:
                raise AudioError("unsupported WAV encoding (extensible, sub-format is not PCM)")
            block_align = channels * bits // 8
            if block_align > 0xFFFF or rate * block_align > 0xFFFFFFFF:
                # wav_from_pcm could not write these back (struct.error): no real recording looks like this.
                raise AudioError(f"unsupported WAV format ({channels} channels at {rate} Hz)")
            fmt = PcmFormat(rate=rate, channels=channels, bits=bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioError("WAV data before its format")
            available = len(data) - body
            pcm_bytes = min(size, available)
            pcm_bytes -= pcm_bytes % (fmt.channels * fmt.bits // 8)
            return WavAudio(data=data, format=fmt, pcm_offset=body, pcm_bytes=pcm_bytes)
        pos = body + size + (size & 1)
    raise AudioError("WAV has no data chunk")


def normalise_wav(data: bytes) -> WavAudio:
    """Rewrite a WAV with exact sizes (the model's own header may carry placeholders)."""
    wav = read_wav(data)
    return pcm_to_wav(wav.pcm, wav.format)


def pcm_to_wav(pcm: bytes, fmt: PcmFormat) -> WavAudio:
    return WavAudio(data=wav_from_pcm(pcm, fmt), format=fmt, pcm_offset=44, pcm_bytes=len(pcm))
