"""The schema, as an ordered list of migrations. Append new ones; never edit a released one.

`_migrations` records which ran and when; `migrate()` applies the missing ones at start-up, each in its
own transaction, so a database from any earlier version is brought forward in place. The DDL is written
once, in SQLite's spelling; the dialect maps its types for PostgreSQL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from storage.connection import Connection, Database
from storage.fulltext import fold

Migration = Callable[[Connection], Awaitable[None]]
MIGRATIONS: list[Migration] = []
migration = MIGRATIONS.append


async def _script(db: Connection, sql: str) -> None:
    """Run DDL statement by statement (one transaction: the migration's), skipping comment-only pieces."""
    for statement in sql.split(";"):
        code = [line for line in statement.splitlines() if line.strip() and not line.strip().startswith("--")]
        if code:
            await db.execute(db.dialect.ddl(statement))


@migration
async def m001_initial(db: Connection) -> None:
    await _script(
        db,
        """
        CREATE TABLE users (
            user_id       INTEGER PRIMARY KEY,
            first_name    TEXT,
            username      TEXT,
            language_code TEXT,
            voice         TEXT,
            created_at    REAL NOT NULL,
            last_seen_at  REAL NOT NULL
        );

        -- A conversation is one (chat, user) thread of context: /reset ends it, and a new one begins.
        CREATE TABLE conversations (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id    INTEGER NOT NULL,
            user_id    INTEGER NOT NULL,
            started_at REAL NOT NULL,
            ended_at   REAL
        );
        CREATE INDEX conversations_open ON conversations (chat_id, user_id, ended_at);

        CREATE TABLE turns (
            id                      INTEGER PRIMARY KEY AUTOINCREMENT,
            conversation_id         INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            chat_id                 INTEGER NOT NULL,
            user_id                 INTEGER NOT NULL,
            message_id              INTEGER,
            role                    TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            kind                    TEXT NOT NULL CHECK (kind IN ('text', 'voice')),
            text                    TEXT NOT NULL,
            audio_seconds           REAL,
            model                   TEXT,
            prompt_tokens           INTEGER,
            completion_tokens       INTEGER,
            prompt_audio_tokens     INTEGER,
            completion_audio_tokens INTEGER,
            cached_tokens           INTEGER,
            created_at              REAL NOT NULL
        );
        CREATE INDEX turns_by_conversation ON turns (conversation_id, id);
        CREATE INDEX turns_by_user ON turns (user_id);
        """,
    )


@migration
async def m002_jobs(db: Connection) -> None:
    """Durable jobs: every accepted update is a row before any work starts, so nothing is lost to a crash."""
    await _script(
        db,
        """
        CREATE TABLE jobs (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id    INTEGER NOT NULL,
            -- what makes a redelivered update recognisable: 'message:<id>' or 'callback:<query id>'
            source     TEXT NOT NULL,
            message_id INTEGER,
            kind       TEXT NOT NULL,
            payload    TEXT NOT NULL,
            state      TEXT NOT NULL DEFAULT 'queued'
                       CHECK (state IN ('queued', 'working', 'done', 'failed')),
            attempts   INTEGER NOT NULL DEFAULT 0,
            -- set once the answer reached the user: a resumed job must not answer again
            replied_at REAL,
            error      TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            UNIQUE (chat_id, source)
        );
        CREATE INDEX jobs_unfinished ON jobs (state, id) WHERE state IN ('queued', 'working')
        """,
    )


@migration
async def m003_access_and_retention(db: Connection) -> None:
    """Admins' allow/deny on top of the environment's lists, refusal notices, optional raw audio, retention."""
    await _script(
        db,
        """
        CREATE TABLE access_overrides (
            subject    TEXT PRIMARY KEY,  -- a user id, an @username (lower case) or a group chat id
            allowed    INTEGER NOT NULL CHECK (allowed IN (0, 1)),
            changed_by INTEGER,
            changed_at REAL NOT NULL
        );

        -- Only who was refused and when (never what they sent), so a stranger is told once an hour at most.
        CREATE TABLE refusals (
            user_id        INTEGER PRIMARY KEY,
            last_notice_at REAL NOT NULL,
            refused        INTEGER NOT NULL DEFAULT 1
        );

        -- Raw voice notes, only with PARLEY_KEEP_AUDIO=true (for debugging), with their own retention.
        CREATE TABLE kept_audio (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            turn_id    INTEGER NOT NULL REFERENCES turns (id) ON DELETE CASCADE,
            user_id    INTEGER NOT NULL,
            data       BLOB NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX kept_audio_by_time ON kept_audio (created_at);
        CREATE INDEX turns_by_time ON turns (created_at);
        CREATE INDEX jobs_by_time ON jobs (updated_at)
        """,
    )


@migration
async def m004_group_log(db: Connection) -> None:
    """What the bot sees in groups (bots cannot fetch history, so it records as messages arrive), and
    per-topic conversations in forum groups."""
    await _script(
        db,
        """
        CREATE TABLE group_messages (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            chat_id          INTEGER NOT NULL,
            message_id       INTEGER NOT NULL,
            thread_id        INTEGER,
            user_id          INTEGER,
            author           TEXT NOT NULL,
            kind             TEXT NOT NULL,
            text             TEXT,
            transcript_state TEXT CHECK (transcript_state IN ('pending', 'done', 'failed')),
            forwarded_from   TEXT,
            reply_to         INTEGER,
            sent_at          REAL NOT NULL,
            edited_at        REAL,
            UNIQUE (chat_id, message_id)
        );
        CREATE INDEX group_messages_by_time ON group_messages (chat_id, sent_at);

        CREATE TABLE group_settings (
            chat_id         INTEGER PRIMARY KEY,
            last_summarized  INTEGER,  -- message id: "since the last summary" starts after it
            digest_time     TEXT,
            timezone        TEXT
        );

        ALTER TABLE conversations ADD COLUMN thread_id INTEGER NOT NULL DEFAULT 0
        """,
    )


@migration
async def m005_spend(db: Connection) -> None:
    """Spend control: a ledger of every API call's usage and cost, running summaries of long conversations,
    and each user's chosen model."""
    await _script(
        db,
        """
        -- One row per API call. user_id and chat_id become a random negative pseudonym on /forget, so totals
        -- stay right without anything pointing back at the person.
        CREATE TABLE usage_ledger (
            id                      INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id                 INTEGER,
            chat_id                 INTEGER,
            model                   TEXT NOT NULL,
            purpose                 TEXT NOT NULL
                                    CHECK (purpose IN ('reply', 'transcription', 'summary', 'tone', 'speak')),
            prompt_text_tokens      INTEGER NOT NULL DEFAULT 0,
            prompt_audio_tokens     INTEGER NOT NULL DEFAULT 0,
            cached_tokens           INTEGER NOT NULL DEFAULT 0,
            completion_text_tokens  INTEGER NOT NULL DEFAULT 0,
            completion_audio_tokens INTEGER NOT NULL DEFAULT 0,
            audio_seconds           REAL,
            cost_usd                REAL NOT NULL,
            created_at              REAL NOT NULL
        );
        CREATE INDEX usage_by_time ON usage_ledger (created_at);
        CREATE INDEX usage_by_user ON usage_ledger (user_id, created_at);

        -- The older turns of a conversation, folded into a few sentences: what is sent instead of them.
        CREATE TABLE conversation_summaries (
            conversation_id INTEGER PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
            summary         TEXT NOT NULL,
            through_turn_id INTEGER NOT NULL,
            updated_at      REAL NOT NULL
        );

        ALTER TABLE users ADD COLUMN model TEXT
        """,
    )


@migration
async def m006_voice_tools(db: Connection) -> None:
    """How each user wants replies (voice, text or both), and results worth not paying for twice."""
    await _script(
        db,
        """
        ALTER TABLE users ADD COLUMN reply_mode TEXT;

        -- '/speak' results by (text, voice, model) hash → the Telegram file id of the voice sent;
        -- transcripts by the file's unique id. Reused instead of a second model call.
        CREATE TABLE tool_cache (
            key        TEXT PRIMARY KEY,
            value      TEXT NOT NULL,
            user_id    INTEGER,
            created_at REAL NOT NULL
        );

        -- After /forget, only what this month's budgets need: amounts and times, no model or content.
        -- Pruned once no budget period can reach them.
        CREATE TABLE forgotten_spend (
            user_id    INTEGER NOT NULL,
            cost_usd   REAL NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE INDEX forgotten_spend_by_user ON forgotten_spend (user_id, created_at)
        """,
    )


@migration
async def m007_languages(db: Connection) -> None:
    """The language a person chose for their private chat, and the one a group's admins chose for it."""
    await _script(
        db,
        """
        ALTER TABLE users ADD COLUMN language TEXT;
        ALTER TABLE group_settings ADD COLUMN language TEXT
        """,
    )


@migration
async def m008_username_bindings(db: Connection) -> None:
    """Access follows people, not names: an @username entry is bound to the user id it was first seen with."""
    await _script(
        db,
        """
        CREATE TABLE username_bindings (
            username TEXT PRIMARY KEY,  -- '@name', lower case, as an access entry names it
            user_id  INTEGER NOT NULL,
            bound_at REAL NOT NULL
        );
        CREATE INDEX username_bindings_by_user ON username_bindings (user_id)
        """,
    )


@migration
async def m009_reminders(db: Connection) -> None:
    """Reminders that fire (claimed with a lease, so several processes fire each once), each person's
    timezone, and the tool calls a reply made, kept with its turn as text."""
    await _script(
        db,
        """
        CREATE TABLE reminders (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id       INTEGER NOT NULL,
            chat_id       INTEGER NOT NULL,
            thread_id     INTEGER NOT NULL DEFAULT 0,
            text          TEXT NOT NULL,
            -- the first occurrence as local wall time (YYYY-MM-DDTHH:MM) in zone: what repeats keep to
            first_local   TEXT NOT NULL,
            zone          TEXT NOT NULL,
            repeat        TEXT NOT NULL CHECK (repeat IN ('none', 'daily', 'weekdays', 'weekly', 'monthly')),
            due_at        REAL NOT NULL,
            claimed_by    TEXT,
            claimed_until REAL,
            attempts      INTEGER NOT NULL DEFAULT 0,
            fired_count   INTEGER NOT NULL DEFAULT 0,
            last_fired_at REAL,
            done_at       REAL,
            cancelled_at  REAL,
            created_at    REAL NOT NULL
        );
        CREATE INDEX reminders_due ON reminders (due_at) WHERE done_at IS NULL;
        CREATE INDEX reminders_by_owner ON reminders (user_id, chat_id) WHERE done_at IS NULL;

        ALTER TABLE users ADD COLUMN timezone TEXT;
        ALTER TABLE turns ADD COLUMN tool_calls TEXT
        """,
    )


@migration
async def m010_group_memory(db: Connection) -> None:
    """Group memory: each logged text folded for full-text search (storage/fulltext.py: the same tokens on
    both engines) and indexed — FTS5 on SQLite, kept in step by triggers; a GIN index of the tsvector on
    PostgreSQL —; the spans of posted summaries, so a reply to one is answered from the same messages;
    weekly digests."""
    await _script(
        db,
        """
        ALTER TABLE group_messages ADD COLUMN search_text TEXT;
        ALTER TABLE group_settings ADD COLUMN digest_weekday INTEGER;
        CREATE TABLE group_summaries (
            chat_id    INTEGER NOT NULL,
            message_id INTEGER NOT NULL,  -- a message the bot posted with a summary or an answer about one
            first_at   REAL NOT NULL,
            last_at    REAL NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (chat_id, message_id)
        )
        """,
    )
    last = 0
    while rows := await db.fetch_all(
        "SELECT id, text FROM group_messages WHERE id > ? AND text IS NOT NULL ORDER BY id LIMIT 1000", (last,)
    ):
        for row_id, text in rows:
            await db.execute("UPDATE group_messages SET search_text = ? WHERE id = ?", (fold(text), row_id))
        last = rows[-1][0]
    if db.dialect.name != "sqlite":
        await db.execute(
            "CREATE INDEX group_messages_search ON group_messages "
            "USING GIN (to_tsvector('simple', COALESCE(search_text, '')))"
        )
        return
    # External content: the index holds tokens only, and triggers keep it in step with every write.
    await db.execute(
        """CREATE VIRTUAL TABLE group_search USING fts5(search_text, content='group_messages',
           content_rowid='id', tokenize='unicode61 remove_diacritics 2')"""
    )
    await db.execute("INSERT INTO group_search (group_search) VALUES ('rebuild')")
    await db.execute(
        """CREATE TRIGGER group_search_insert AFTER INSERT ON group_messages BEGIN
               INSERT INTO group_search (rowid, search_text) VALUES (new.id, new.search_text);
           END"""
    )
    await db.execute(
        """CREATE TRIGGER group_search_delete AFTER DELETE ON group_messages BEGIN
               INSERT INTO group_search (group_search, rowid, search_text) VALUES ('delete', old.id, old.search_text);
           END"""
    )
    await db.execute(
        """CREATE TRIGGER group_search_update AFTER UPDATE OF search_text ON group_messages BEGIN
               INSERT INTO group_search (group_search, rowid, search_text) VALUES ('delete', old.id, old.search_text);
               INSERT INTO group_search (rowid, search_text) VALUES (new.id, new.search_text);
           END"""
    )


@migration
async def m011_several_processes(db: Connection) -> None:
    """Several processes sharing one database: each webhook update recorded once by its id (a duplicate
    POST is recognised wherever it lands); a job's lane (a chat's replies, or its background work), the
    process holding it and until when (a lease, renewed while it runs, so another process takes over a
    dead one's jobs); at most one open conversation per (chat, user, topic), so two processes opening one
    at once agree on it."""
    await _script(
        db,
        """
        CREATE TABLE updates (
            update_id   INTEGER PRIMARY KEY,
            received_at REAL NOT NULL
        );
        CREATE INDEX updates_by_time ON updates (received_at);

        ALTER TABLE jobs ADD COLUMN lane TEXT NOT NULL DEFAULT '';
        ALTER TABLE jobs ADD COLUMN leased_by TEXT;
        ALTER TABLE jobs ADD COLUMN lease_until REAL;
        CREATE INDEX jobs_by_chat ON jobs (chat_id, lane, id) WHERE state IN ('queued', 'working')
        """,
    )
    # Two processes may already have opened a conversation each: the newer one is the one in use.
    await db.execute(
        """UPDATE conversations SET ended_at = ?
           WHERE ended_at IS NULL AND id < (SELECT MAX(c.id) FROM conversations c WHERE c.chat_id =
               conversations.chat_id AND c.user_id = conversations.user_id AND c.thread_id = conversations.thread_id
               AND c.ended_at IS NULL)""",
        (time.time(),),
    )
    await db.execute(
        "CREATE UNIQUE INDEX conversations_one_open ON conversations (chat_id, user_id, thread_id) "
        "WHERE ended_at IS NULL"
    )


@migration
async def m012_notices(db: Connection) -> None:
    """Notices sent at most once a day, durably: to a group that is not allowed yet (how to switch the bot on
    there), and to the admins about a refused stranger; and when a stranger was last refused, for /users."""
    await _script(
        db,
        """
        CREATE TABLE group_notices (
            chat_id        INTEGER PRIMARY KEY,
            last_notice_at REAL NOT NULL
        );
        ALTER TABLE refusals ADD COLUMN last_refused_at REAL;
        ALTER TABLE refusals ADD COLUMN admins_told_at REAL
        """,
    )


@migration
async def m013_personas(db: Connection) -> None:
    """Personas: the one each person chose (a built-in's key, or 'custom' with their own instructions kept
    beside it, so going back to a built-in does not lose them), and the one a group's admins chose."""
    await _script(
        db,
        """
        ALTER TABLE users ADD COLUMN persona TEXT;
        ALTER TABLE users ADD COLUMN persona_text TEXT;
        ALTER TABLE group_settings ADD COLUMN persona TEXT;
        ALTER TABLE group_settings ADD COLUMN persona_text TEXT
        """,
    )


@migration
async def m014_shared_limits(db: Connection) -> None:
    """What several processes sharing one database must agree on: each rate window, the budget holds of
    calls in progress, and which slot of each piece of scheduled work (a digest, the retention sweep) ran."""
    await _script(
        db,
        """
        -- One sliding window per limited thing: the times of its recent hits (at most the limit's count).
        CREATE TABLE rate_windows (
            scope      TEXT NOT NULL,     -- 'user', 'chat', or a command with its own rate ('summary')
            subject    INTEGER NOT NULL,  -- the user or chat id it counts
            hits       TEXT NOT NULL,     -- epoch seconds, oldest first, space-separated
            warned     INTEGER NOT NULL DEFAULT 0,
            expires_at REAL NOT NULL,     -- when the newest hit leaves the window: the row can go
            PRIMARY KEY (scope, subject)
        );
        CREATE INDEX rate_windows_by_expiry ON rate_windows (expires_at);

        -- A call's estimated cost, held against the budgets until its real cost is in the ledger. A hold
        -- whose process died runs out by itself.
        CREATE TABLE spend_holds (
            id         INTEGER PRIMARY KEY AUTOINCREMENT,
            user_id    INTEGER NOT NULL,
            amount_usd REAL NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        );
        CREATE INDEX spend_holds_by_user ON spend_holds (user_id, expires_at);

        -- The last slot of each piece of scheduled work that some process claimed (and so ran).
        CREATE TABLE scheduled_runs (
            task       TEXT PRIMARY KEY,  -- 'retention', 'digest:<chat id>'
            slot       REAL NOT NULL,     -- the occurrence claimed, as epoch seconds
            claimed_by TEXT NOT NULL,
            claimed_at REAL NOT NULL
        )
        """,
    )


@migration
async def m015_forward_origins(db: Connection) -> None:
    """Who a forwarded message in the group log came from, by user id when Telegram says it: /forget finds the
    rows that name the person in other members' messages by that id (their name alone is not unique)."""
    await _script(
        db,
        """
        ALTER TABLE group_messages ADD COLUMN forwarded_from_id INTEGER;
        CREATE INDEX group_messages_forwarded ON group_messages (forwarded_from_id)
            WHERE forwarded_from_id IS NOT NULL
        """,
    )


async def applied(db: Database) -> list[str]:
    """The names of the migrations this database has had, oldest first."""
    async with db.transaction() as tx:
        await tx.execute(
            db.dialect.ddl("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        )
    return [row[0] for row in await db.fetch_all("SELECT name FROM _migrations ORDER BY name")]


async def recorded(db: Database) -> list[str] | None:
    """The migrations a database has had, changing nothing; None when it has no record at all (new)."""
    try:
        return [row[0] for row in await db.fetch_all("SELECT name FROM _migrations ORDER BY name")]
    except Exception:  # no such table: each engine raises its own error class
        return None


async def migrate(db: Database, migrations: list[Migration] | None = None) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now.

    Each migration is one transaction that first checks, inside it, that no other process applied it
    meanwhile; on PostgreSQL an advisory lock also makes concurrent starters wait for the first.
    """
    ran: list[str] = []
    async with db.migration_lock():
        done = set(await applied(db))
        for step in MIGRATIONS if migrations is None else migrations:
            name = step.__name__
            if name in done:
                continue
            async with db.transaction() as tx:
                if await tx.fetch_one("SELECT 1 FROM _migrations WHERE name = ?", (name,)):
                    continue
                await step(tx)
                await tx.execute("INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time()))
            ran.append(name)
    return ran
