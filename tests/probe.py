"""Small HTTP helpers for the operations tests: a free loopback port, a metrics scrape, a JSON GET."""

from __future__ import annotations

import socket
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it; the caller binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def get(url: str) -> tuple[int, str, str]:
    """Status, Content-Type and body of a GET."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.json()


async def scrape(url: str) -> Samples:
    """Every sample on a /metrics page, keyed by (sample name, labels)."""
    status, _, text = await get(url)
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when absent (a labelled counter appears only once it has counted)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, prefix: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples under `prefix` whose value changed, with the change."""
    keys = {key for key in (*before, *after) if key[0].startswith(prefix)}
    changes = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in keys}
    return {key: change for key, change in changes.items() if change}
