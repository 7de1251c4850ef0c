"""Whether a group message is addressed to the bot: a turn of the sender's conversation (which then also
transcribes it) rather than only a line of the group's log."""

from __future__ import annotations

import re

from telegram import Bot, Message, MessageEntity


def addressed_to(message: Message, bot: Bot) -> bool:
    """A mention of the bot (in text or caption) or a reply to one of its messages."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
        return True
    wanted = f"@{bot.username}".lower() if bot.username else None
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and wanted and text.lower() == wanted:
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None and entity.user.id == bot.id:
            return True
    return False


def without_mention(text: str | None, bot: Bot) -> str | None:
    if text is None or not bot.username:
        return text
    return re.sub(rf"@{re.escape(bot.username)}\b", "", text, flags=re.IGNORECASE).strip() or text


def commanded(message: Message, bot: Bot) -> bool:
    """A command for this bot: "/name" (in a group, maybe meant for every bot) or "/name@this_bot"."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            target = text[: entity.length].partition("@")[2]
            return not target or (bot.username is not None and target.lower() == bot.username.lower())
    return False
