"""How updates arrive: long polling (the default) or python-telegram-bot's webhook server.

In webhook mode Telegram POSTs each update to PARLEY_WEBHOOK_URL (an HTTPS front end — a reverse proxy or
a platform's ingress — forwards it to PARLEY_LISTEN, on the URL's path). `setWebhook` is called with
PARLEY_WEBHOOK_SECRET as the secret token; Telegram sends it back in the X-Telegram-Bot-Api-Secret-Token
header, and python-telegram-bot's server answers 403 to any request without the right one before reading
its body, so a stranger who finds the URL cannot feed the bot updates.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from telegram.error import BadRequest
from telegram.ext import Updater

from parley.config import Settings
from parley.ops_server import ServeError

log = logging.getLogger(__name__)


def webhook_path(url: str) -> str:
    """The path the webhook server answers on: the public URL's, as a proxy forwards it unchanged."""
    return urlsplit(url).path.rstrip("/") or "/"


async def receive_updates(
    updater: Updater, settings: Settings, *, poll_timeout: int, allowed_updates: list[str]
) -> None:
    """Start taking updates; `updater.stop()` stops either way of receiving them."""
    if not settings.operations.webhook:
        await updater.start_polling(timeout=poll_timeout, allowed_updates=allowed_updates)
        return
    assert settings.operations.webhook_url is not None and settings.operations.webhook_secret is not None
    listen = settings.operations.listen
    try:
        await updater.start_webhook(
            listen=listen.host,
            port=listen.port,
            url_path=webhook_path(settings.operations.webhook_url),
            webhook_url=settings.operations.webhook_url,
            secret_token=settings.operations.webhook_secret,
            allowed_updates=allowed_updates,
        )
    except OSError as exc:
        raise ServeError(
            f"PARLEY_LISTEN: cannot listen on {listen} ({exc.strerror or exc}): choose another address"
        ) from exc
    except BadRequest as exc:
        raise ServeError(
            f"PARLEY_WEBHOOK_URL: Telegram refused the webhook {settings.operations.webhook_url} ({exc.message}): "
            "it must be a public https:// URL (ports 443, 80, 88 or 8443)"
        ) from exc
    url = settings.operations.webhook_url
    log.info("webhook: listening on %s%s for %s", listen, webhook_path(url), url)
