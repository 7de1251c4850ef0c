"""The `parley` command: the composition root that reads settings, builds services and runs the bot."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from pathlib import Path

import uvloop
from telegram.error import InvalidToken, NetworkError

from bot.application import run_bot
from bot.doctor import doctor
from bot.log_privacy import withhold_updates
from bot.migrate_db import migrate_db
from parley.config import ConfigError, Settings, load_settings, read_environment
from parley.logs import configure_logging, redact
from parley.memory import tune_allocator
from parley.ops_server import ServeError
from parley.services import Services
from parley.shutdown import MARGIN_SECONDS, exit_after
from storage import Storage, StorageUnavailable, backup_file

log = logging.getLogger("parley")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


class StartupError(Exception):
    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parley", description="Parley, a voice chat bot for Telegram.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="run the bot (long polling, or a webhook server)")
    run.add_argument("--env-file", default=".env", help="file of settings to read (default: .env)")
    run.add_argument(
        "--webhook", action="store_true", help="take updates by webhook (as when PARLEY_WEBHOOK_URL is set)"
    )
    check = commands.add_parser("doctor", help="check the settings, ffmpeg, the database, Telegram and OpenAI")
    check.add_argument("--env-file", default=".env", help="file of settings to read (default: .env)")
    check.add_argument("--live", action="store_true", help="also make one tiny real request to the model")
    backup = commands.add_parser("backup", help="copy the database consistently, even while the bot runs")
    backup.add_argument("path", type=Path, help="where to write the copy (must not exist yet)")
    backup.add_argument("--env-file", default=".env", help="file of settings to read (default: .env)")
    move = commands.add_parser("migrate-db", help="copy the SQLite database (PARLEY_DB) into PostgreSQL")
    move.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host:5432/database")
    move.add_argument("--env-file", default=".env", help="file of settings to read (default: .env)")
    return parser


async def _serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            return
        stop.set()  # jobs get the grace period; past it and a margin, the process ends regardless
        exit_after(settings.operations.shutdown_seconds + MARGIN_SECONDS, EXIT_FAILURE)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    try:
        storage = await Storage.open(settings.operations.database, pool_size=settings.operations.db_pool)
    except StorageUnavailable as exc:
        raise StartupError(f"DATABASE_URL: {exc}: check the server, the URL and the password", EXIT_CONFIG) from exc
    except (OSError, sqlite3.Error) as exc:
        raise StartupError(
            f"PARLEY_DB: cannot open the database at {settings.operations.db_path} ({exc}): "
            "check the path and its permissions",
            EXIT_CONFIG,
        ) from exc
    try:
        services = Services.build(settings, storage)
    except ConfigError as exc:  # a tool named in PARLEY_TOOLS that cannot be loaded
        await storage.close()
        raise StartupError("\n".join(exc.problems), EXIT_CONFIG) from exc
    except BaseException:
        await storage.close()
        raise
    try:
        await run_bot(services, stop)
    except InvalidToken as exc:
        raise StartupError(
            "TELEGRAM_BOT_TOKEN was rejected by Telegram: copy the token again from BotFather", EXIT_CONFIG
        ) from exc
    except NetworkError as exc:
        raise StartupError(
            f"could not reach Telegram at {settings.telegram.api_url} ({exc}): check the network or TELEGRAM_API_URL",
            EXIT_FAILURE,
        ) from exc
    except ServeError as exc:
        raise StartupError(str(exc), EXIT_CONFIG) from exc
    finally:
        await services.close()


def backup(env_file: str, target: Path) -> int:
    """Only the database path is needed: a backup must work without the bot's secrets."""
    environment = read_environment(env_file)
    if (environment.get("DATABASE_URL") or "").strip():
        print("parley: DATABASE_URL is set: back PostgreSQL up with pg_dump (this copies SQLite)", file=sys.stderr)
        return EXIT_CONFIG
    source = Path(environment.get("PARLEY_DB") or "parley.db")
    if not source.is_file():
        print(f"parley: PARLEY_DB: no database at {source}", file=sys.stderr)
        return EXIT_CONFIG
    if target.exists():
        print(f"parley: {target} already exists: choose a new file for the backup", file=sys.stderr)
        return EXIT_CONFIG
    try:
        asyncio.run(backup_file(source, target))
    except Exception as exc:
        print(f"parley: backup failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"parley: backed up {source} to {target}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "backup":
        return backup(args.env_file, args.path)
    if args.command == "doctor":
        return doctor(read_environment(args.env_file), live=args.live)
    if args.command == "migrate-db":
        return migrate_db(args.env_file, args.to)
    try:
        settings = load_settings(read_environment(args.env_file), webhook=args.webhook)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"parley: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    handler = configure_logging(
        settings.operations.log_level, settings.secrets, log_format=settings.operations.log_format
    )
    withhold_updates(handler)  # what people write never reaches the log
    tune_allocator()  # before any thread starts: the allocator's arenas are fixed then
    try:
        # uvloop: a wake-up of the loop (a socket ready, a result from the database's thread) costs less
        # CPU than in asyncio's own loop, and a voice turn is mostly wake-ups.
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(settings))
    except StartupError as exc:
        print(f"parley: {redact(str(exc), settings.secrets)}", file=sys.stderr)
        return exc.exit_code
    except Exception:
        # Unexpected: the details go through the redacting log handler, never raw to the terminal.
        log.exception("parley stopped on an unexpected error")
        return EXIT_FAILURE
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
