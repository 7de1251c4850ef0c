"""aiohttp sessions for Parley's two HTTP clients, made alike: the Bot API's (python-telegram-bot's
`BaseRequest`, bot/telegram_http.py) and the model's (the openai SDK's transport, parley/model_transport.py).

Both speak for a client whose defaults people know (httpx's, as python-telegram-bot and the SDK use it), so
both take its timeouts and its certificate authorities, and honour a proxy from the environment as it does.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import Mapping
from typing import Any

import aiohttp


def client_session(
    *, limit: int, ssl_context: ssl.SSLContext, connector: Mapping[str, Any] | None = None, **options: Any
) -> aiohttp.ClientSession:
    """A session of at most `limit` connections (0: no limit), any number of them to one host, trusting what
    `ssl_context` trusts. The environment's proxy settings are read only when a proxy is set: aiohttp would
    otherwise look them and ~/.netrc up again on a thread for every request, two hand-offs that cost more
    than a small request. `connector`: more of aiohttp's connector options; `options`: the session's."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, limit_per_host=0, ssl=ssl_context, **(connector or {})),
        trust_env=bool(urllib.request.getproxies_environment()),
        **options,
    )


def client_timeout(*, connect: float | None, pool: float | None, read: float | None) -> aiohttp.ClientTimeout:
    """httpx's timeouts (each None for none) as aiohttp's: waiting for a pooled connection and then
    connecting are one timeout there, so they get the two together; reading, between any two reads."""
    return aiohttp.ClientTimeout(
        total=None,
        connect=None if connect is None or pool is None else connect + pool,
        sock_connect=connect,
        sock_read=read,
    )
