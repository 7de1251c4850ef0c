"""A TCP relay in front of a stand-in: to count the connections a client opens, or to put the stand-in behind
TLS under a certificate authority of its own, as a server inside a company may be."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit


def private_authority(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server's TLS with a certificate for 127.0.0.1 that no public authority signed, made by `openssl req`
    as a company's own authority would be, and the certificate's file (what SSL_CERT_FILE would name)."""
    cert, key = directory / "authority.pem", directory / "authority.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *subject]
    subprocess.run([*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    return tls, cert


@contextlib.asynccontextmanager
async def counting_relay(target: str, tls: ssl.SSLContext | None = None) -> AsyncIterator[tuple[str, list[int]]]:
    """A relay in front of `target` (a base URL), speaking TLS to the client when given `tls`: yields the
    relay's base URL and a list that gets one entry per connection the client opens through it."""
    parts = urlsplit(target)
    opened: list[int] = []

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        opened.append(1)
        server_reader, server_writer = await asyncio.open_connection(parts.hostname, parts.port)
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else parts.scheme}://127.0.0.1:{port}{parts.path}", opened
    finally:
        server.close()
