"""A codec worker: `python -m parley.audio.worker MEMORY_MB`, driven over its stdin and stdout by pool.py.

Its address space is capped before it reads any input, so a decoder that tries to allocate gigabytes
fails inside this process (an error answer, or at worst its death) instead of taking the machine's
memory. One request at a time; the process lives on for the next.

Wire format. Request: a 4-byte big-endian length, a JSON header of that length (with "size"), then
"size" bytes of input. Answer: messages of a 1-byte kind and a 4-byte big-endian length, then the body:
b"D" a piece of output, b"R" the JSON result (last), b"E" a JSON error {kind, message} (last).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
from typing import Any, BinaryIO

HEADER = struct.Struct(">I")
MESSAGE = struct.Struct(">cI")


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if len(data) == size else None


def _send(out: BinaryIO, kind: bytes, body: bytes) -> None:
    out.write(MESSAGE.pack(kind, len(body)))
    out.write(body)


_streams: dict[int, Any] = {}
"""Open voice streams (codec.VoiceEncoder) by id: their encoder state lives here between pieces."""


def _handle(header: dict[str, Any], payload: bytes, out: BinaryIO) -> dict[str, Any]:
    from parley.audio import codec

    op = header["op"]
    if op.startswith("voice_"):
        return _voice_stream(op, header, payload, out)
    if op == "decode":
        emit = None if header.get("measure_only") else (lambda piece: _send(out, b"D", piece))
        decoded = codec.decode(payload, rate=header["rate"], max_seconds=header["max_seconds"], emit=emit)
        return {"seconds": decoded.seconds}
    if op == "encode_voice":
        _send(out, b"D", codec.encode_voice(payload, rate=header["rate"], channels=header["channels"]))
        return {}
    raise ValueError(f"unknown operation {op!r}")


def _voice_stream(op: str, header: dict[str, Any], payload: bytes, out: BinaryIO) -> dict[str, Any]:
    from parley.audio import codec

    stream = int(header["stream"])
    if op == "voice_open":
        _streams[stream] = codec.VoiceEncoder(rate=header["rate"], channels=header.get("channels", 1))
        return {}
    if op == "voice_abort":
        _streams.pop(stream, None)
        return {}
    encoder = _streams.get(stream)
    if encoder is None:
        raise codec.CodecError("unreadable", f"no open voice stream {stream}")
    try:
        pages = encoder.feed(payload) if op == "voice_feed" else encoder.finish()
    except BaseException:
        _streams.pop(stream, None)  # a failed encoder is not fed again
        raise
    if op == "voice_finish":
        del _streams[stream]
    if pages:
        _send(out, b"D", pages)
    return {"samples": encoder.samples}


def serve(memory_mb: int, stdin: BinaryIO, stdout: BinaryIO) -> None:
    import av
    import av.logging

    from parley.audio import codec

    av.logging.set_level(None)  # FFmpeg's own messages would go to the bot's stderr: errors come back typed
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
        try:
            result = _handle(header, payload, stdout)
        except codec.CodecError as exc:
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


THREAD_STACK = 2 * 1024 * 1024
"""Each Opus encoder starts two threads inside FFmpeg, whose stacks are as large as RLIMIT_STACK (8 MB by
default): 16 MB of address space an open voice stream, so 30 of them would reach the worker's cap. glibc
takes the default thread stack from RLIMIT_STACK as the process starts, so the worker sets it and starts
itself again (once); 2 MB is ample for FFmpeg's threads and for this one-request-at-a-time main thread."""


def _small_stacks() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if soft == resource.RLIM_INFINITY or soft > THREAD_STACK:
        limit = THREAD_STACK if hard == resource.RLIM_INFINITY else min(THREAD_STACK, hard)
        resource.setrlimit(resource.RLIMIT_STACK, (limit, hard))
        os.execv(sys.executable, [sys.executable, "-m", "parley.audio.worker", *sys.argv[1:]])


if __name__ == "__main__":
    _small_stacks()
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0, sys.stdin.buffer, sys.stdout.buffer)
