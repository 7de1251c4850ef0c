"""A codec worker: `python -m parley.audio.worker MEMORY_MB`, driven over its stdin and stdout by pool.py.

Its address space is capped before it reads any input, so a decoder that tries to allocate gigabytes
fails inside this process (an error answer, or at worst its death) instead of taking the machine's
memory. One request at a time; the process lives on for the next.

Wire format. Request: a 4-byte big-endian length, a JSON header of that length (with "size"), then
"size" bytes of input. Answer: messages of a 1-byte kind and a 4-byte big-endian length, then the body:
b"D" a piece of output, b"F" a file made beside it (a decode's rebuilt voice note, see opus.decode_ogg), b"R"
the JSON result (last), b"E" a JSON error {kind, message} (last). Every
request is answered so, except a voice_feed (see QUIET), which gets no answer.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import struct
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, BinaryIO

from parley.audio import opus
from parley.audio.bounds import CodecError, Decoded
from parley.memory import release_free_memory

HEADER = struct.Struct(">I")
MAX_PARTS = 64
"""A decode may be asked for one of at most this many parts of a recording (see codec.decode)."""
MESSAGE = struct.Struct(">cI")


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _send(out: BinaryIO, kind: bytes, body: bytes) -> None:
    out.write(MESSAGE.pack(kind, len(body)))
    out.write(body)


class _Stream:
    """An open voice stream: its encoder, and the pages made by feeds that are not answered."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.pages: list[bytes] = []
        self.error: Exception | None = None


_streams: dict[int, _Stream] = {}
"""Open voice streams by id: their encoder state lives here between pieces."""

QUIET = "voice_feed"
"""The one request that gets no answer at all: a piece of a reply's audio. The bot writes it and goes on
(a round trip per piece would wake both processes for nothing); its pages, or its error, come with the
stream's voice_finish."""


def _handle(header: dict[str, Any], payload: bytes, out: BinaryIO) -> dict[str, Any]:
    op = header["op"]
    if op.startswith("voice_"):
        return _voice_stream(op, header, payload, out)
    if op == "decode":
        emit = None if header.get("measure_only") else (lambda piece: _send(out, b"D", piece))
        index, count = (int(value) for value in header.get("part", (0, 1)))
        if not 0 <= index < count <= MAX_PARTS:
            raise ValueError(f"no part {index} of {count}")
        limit = header["max_seconds"]
        rebuild = bool(header.get("rebuild"))
        decoded = _decode(
            payload, rate=header["rate"], max_seconds=limit, emit=emit, part=(index, count), rebuild=rebuild
        )
        if decoded.ogg is not None:
            _send(out, b"F", decoded.ogg)
        return {"seconds": decoded.seconds}
    if op == "libopus":
        lib = opus.libopus_loaded()
        return {} if lib is None else {"version": lib.version.decode("ascii", "replace"), "path": lib.path}
    if op == "encode_voice":
        encoder = _voice_encoder(rate=header["rate"], channels=header["channels"])
        _send(out, b"D", encoder.feed(payload) + encoder.finish())
        return {}
    raise ValueError(f"unknown operation {op!r}")


def _decode(
    data: bytes,
    *,
    rate: int,
    max_seconds: float,
    emit: Callable[[bytes], None] | None,
    part: tuple[int, int],
    rebuild: bool = False,
) -> Decoded:
    """A voice note by libopus alone (opus.py), rebuilt as well when asked; anything else by FFmpeg's
    libraries (codec.py), never rebuilt."""
    decoded = opus.decode_ogg(data, rate=rate, max_seconds=max_seconds, emit=emit, part=part, rebuild=rebuild)
    if decoded is None:
        decoded = _ffmpeg().decode(data, rate=rate, max_seconds=max_seconds, emit=emit, part=part)
    return decoded


def _voice_encoder(*, rate: int, channels: int) -> Any:
    """libopus alone for mono audio at a rate Opus takes (the model's); FFmpeg's resampler first otherwise."""
    if channels == 1 and rate in opus.OPUS_RATES:
        return opus.VoiceEncoder(rate=rate)
    return _ffmpeg().ResamplingEncoder(rate=rate, channels=channels)


@functools.cache
def _ffmpeg() -> ModuleType:
    """codec.py, and with it FFmpeg's libraries (PyAV), loaded the first time an input needs them: about half
    of a worker's memory, which the voice notes of a conversation never use."""
    import av.logging

    av.logging.set_level(None)  # FFmpeg's own messages would go to the bot's stderr: errors come back typed
    from parley.audio import codec

    return codec


def _feed_quietly(header: dict[str, Any], payload: bytes) -> None:
    """A voice_feed: encode the piece and keep its pages; a failure is kept for voice_finish to report."""
    stream = _streams.get(int(header["stream"]))
    if stream is None or stream.error is not None:
        return  # an unknown stream is reported by its voice_finish; a failed encoder is not fed again
    try:
        stream.pages.append(stream.encoder.feed(payload))
    except Exception as exc:
        stream.error = exc


def _voice_stream(op: str, header: dict[str, Any], payload: bytes, out: BinaryIO) -> dict[str, Any]:
    key = int(header["stream"])
    if op == "voice_open":
        _streams[key] = _Stream(_voice_encoder(rate=header["rate"], channels=header.get("channels", 1)))
        return {}
    if op == "voice_abort":
        _streams.pop(key, None)
        return {}
    if op != "voice_finish":
        raise ValueError(f"unknown operation {op!r}")
    stream = _streams.pop(key, None)  # finished or failed, the encoder is done with
    if stream is None:
        raise CodecError("unreadable", f"no open voice stream {key}")
    if stream.error is not None:
        raise stream.error
    if payload:
        stream.pages.append(stream.encoder.feed(payload))
    stream.pages.append(stream.encoder.finish())
    pages = b"".join(stream.pages)
    if pages:
        _send(out, b"D", pages)
    return {"samples": stream.encoder.samples}


def serve(memory_mb: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        raw = _read_exactly(stdin, HEADER.size)
        if raw is None:
            return  # the pool closed our stdin: shut down
        header_bytes = _read_exactly(stdin, HEADER.unpack(raw)[0])
        if header_bytes is None:
            return
        header = json.loads(header_bytes)
        payload = _read_exactly(stdin, header["size"])
        if payload is None:
            return
        if header["op"] == QUIET:
            _feed_quietly(header, payload)
            del payload
            continue
        try:
            result = _handle(header, payload, stdout)
        except CodecError as exc:
            _send(stdout, b"E", json.dumps({"kind": exc.kind, "message": str(exc)}).encode())
        except MemoryError:
            _send(stdout, b"E", json.dumps({"kind": "too_big", "message": "out of memory while decoding"}).encode())
        except Exception as exc:  # a decoder failure we did not foresee is still only this input's problem
            message = f"{type(exc).__name__}: {exc}"
            _send(stdout, b"E", json.dumps({"kind": "unreadable", "message": message}).encode())
        else:
            _send(stdout, b"R", json.dumps(result).encode())
        del payload
        stdout.flush()
        if not _streams:
            release_free_memory()  # nothing open: what the last replies' encoders used goes back to the system


THREAD_STACK = 2 * 1024 * 1024
"""Each resampler FFmpeg builds (a filter graph: decoding, and a reply at a rate Opus does not take) starts two
threads, whose stacks are as large as RLIMIT_STACK (8 MB by default): 16 MB of address space each while it
lives, so a few dozen at once would reach the worker's cap. glibc takes the default thread stack from
RLIMIT_STACK as the process starts, so the worker sets it and starts itself again (once); 2 MB is ample for
FFmpeg's threads and for this one-request-at-a-time main thread."""


def _small_stacks() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft > THREAD_STACK:
        limit = THREAD_STACK if hard == resource.RLIM_INFINITY else min(THREAD_STACK, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (limit, hard))
        os.execv(sys.executable, [sys.executable, "-m", "parley.audio.worker", *sys.argv[1:]])


if __name__ == "__main__":
    _small_stacks()
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0, sys.stdin.buffer, sys.stdout.buffer)
