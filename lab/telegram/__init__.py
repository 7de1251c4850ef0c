"""A loopback stand-in for the Telegram Bot API, driven by the unmodified python-telegram-bot.

It behaves like the real server where the application can get it wrong (unknown chats, empty or over-long
text, broken HTML/MarkdownV2, replies to missing messages, voice notes that are not OGG/Opus, files over the
20 MB download limit, callback data over 64 bytes, concurrent getUpdates ...) and answers with the real
error descriptions, so a test that passes here does not fail against api.telegram.org for a reason the lab
could have caught. Everything the bot does is recorded (`calls`, `sent`) for precise assertions.

Modules: fake (the scenario façade), server (HTTP, faults), state (what the server knows), api_* (Bot API
methods by family), compose (what sending methods share), people (what users do, as updates), webhook
(posting updates to a webhook), params (request parsing), text (entities, HTML and MarkdownV2).
"""

from .errors import DOWNLOAD_LIMIT, UPLOAD_LIMIT, TelegramAPIError
from .fake import FakeTelegram
from .records import ApiCall, SentMessage, StoredFile, StoredMessage

__all__ = [
    "DOWNLOAD_LIMIT",
    "UPLOAD_LIMIT",
    "ApiCall",
    "FakeTelegram",
    "SentMessage",
    "StoredFile",
    "StoredMessage",
    "TelegramAPIError",
]
