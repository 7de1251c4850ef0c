"""A group learns how to switch the bot on: a how-to for its admins when the bot is added, and, while the
group is not allowed, one notice (at most once a day, remembered across restarts) when someone addresses the
bot there, instead of silence."""

from __future__ import annotations

import logging

from telegram import ChatMemberUpdated, Message
from telegram.constants import ChatMemberStatus, ChatType

from bot import texts
from bot.addressing import addressed_to, commanded
from bot.edge import Edge
from bot.sender import tell
from parley.i18n.catalog import using

log = logging.getLogger(__name__)

NOTICE_QUIET_SECONDS = 24 * 3600.0
GROUPS = (ChatType.GROUP, ChatType.SUPERGROUP)
OUTSIDE = (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
INSIDE = (ChatMemberStatus.MEMBER, ChatMemberStatus.ADMINISTRATOR)


async def added(change: ChatMemberUpdated, edge: Edge) -> None:
    """The bot was added to a group (my_chat_member: from outside to inside): what it does there, how to switch
    it on, and privacy mode when it limits what the bot sees. Whoever added it, allowed or not."""
    chat = change.chat
    if chat.type not in GROUPS:
        return
    if change.old_chat_member.status not in OUTSIDE or change.new_chat_member.status not in INSIDE:
        return
    allowed = await edge.services.access.group_allowed(chat.id)
    sees_all = edge.bot.can_read_all_group_messages or change.new_chat_member.status == ChatMemberStatus.ADMINISTRATOR
    log.info("chat=%s bot added (allowed=%s)", chat.id, allowed)
    with using(await edge.languages.of_chat(chat.id)):
        text = texts.group_welcome(chat.id, allowed=allowed)
        if not sees_all:
            text += "\n\n" + texts.PRIVACY_MODE
        await tell(edge.bot, chat.id, text)


async def not_enabled(edge: Edge, message: Message) -> None:
    """Someone addressed the bot in a group that is not allowed: the group is told how to switch it on, once
    a day at most (a mention or command nobody answers would look like a broken bot)."""
    if not (commanded(message, edge.bot) or addressed_to(message, edge.bot)):
        return
    if not await edge.services.storage.access.note_group_notice(message.chat_id, quiet_seconds=NOTICE_QUIET_SECONDS):
        return
    thread = message.message_thread_id if message.is_topic_message else None
    with using(await edge.languages.of_chat(message.chat_id)):
        await tell(
            edge.bot, message.chat_id, texts.group_not_enabled(message.chat_id), reply_to=message.message_id,
            thread_id=thread,
        )  # fmt: skip
