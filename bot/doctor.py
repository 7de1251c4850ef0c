"""`parley doctor`: checks a deployment end to end and says, one line each, what is wrong and how to fix it.

It changes nothing: the database is opened without migrating it, Telegram is asked getMe and
getWebhookInfo only, OpenAI is asked whether the models exist (one tiny real request only with --live).
Every line passes through the same redaction as the logs, so no secret is ever printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import struct
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TextIO

import openai
from openai import AsyncOpenAI
from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError

from parley.access import unconfigured
from parley.actions import PluginError, available, load
from parley.audio import AudioConverter, PcmFormat, WavAudio, find_ffmpeg, pcm_to_wav
from parley.config import ConfigError, Settings, load_settings
from parley.config.groups import DEFAULT_MODEL, DEFAULT_MODELS, RETIRED_MODELS
from parley.errors import ParleyError
from parley.logs import redact
from parley.model import ModelClient
from parley.providers import openai_client
from storage import StorageUnavailable
from storage.migrations import MIGRATIONS, recorded
from storage.postgres import PostgresDatabase, redacted
from storage.sqlite import inspect_file

OK, FAIL = "✓", "✗"
BUILT_IN = "parley.actions.builtin."
"""Where Parley's own tools live (declared as entry points exactly like a plugin's)."""
NETWORK_SECONDS = 15.0
REQUIRED_ENCODERS = ("libopus", "libmp3lame")


@dataclass(frozen=True, slots=True)
class Finding:
    ok: bool
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = OK if self.ok else FAIL
        fix = f" → {self.fix}" if self.fix and not self.ok else ""
        return f"{mark} {self.what}: {self.detail}{fix}"


# --- configuration ---------------------------------------------------------------------------------


def check_tools(settings: Settings, installed: Mapping[str, EntryPoint] | None = None) -> Finding:
    """The tools PARLEY_TOOLS offers the model, loaded and checked as `parley run` loads them: each entry
    point with the tools it brings, built in or from which plugin package."""
    installed = available() if installed is None else installed
    enabled = settings.actions.enabled
    if not enabled:
        names = ", ".join(sorted(installed)) or "none"
        return Finding(True, "tools", f"none enabled (PARLEY_TOOLS); installed: {names}")
    try:
        load(enabled, installed)  # every problem `parley run` would refuse to start with
        parts = []
        for name in enabled:
            entry = installed[name]
            tools = ", ".join(t.name for t in load([name], installed))
            if entry.value.startswith(BUILT_IN):
                parts.append(f"{name} (built in: {tools})")
            else:
                package = entry.dist.name if entry.dist is not None else entry.module
                parts.append(f"{name} (plugin {package}: {tools})")
    except PluginError as exc:
        return Finding(False, "tools", str(exc), "install the tool's package, or take it out of PARLEY_TOOLS")
    return Finding(True, "tools", "; ".join(parts))


def check_settings(env: Mapping[str, str]) -> tuple[Settings | None, list[Finding]]:
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        return None, [Finding(False, "configuration", problem) for problem in exc.problems]
    operations = settings.operations
    mode = f"webhook {operations.webhook_url} on {operations.listen}" if operations.webhook else "long polling"
    ops = f"health and metrics on {operations.metrics_listen}" if operations.metrics_listen else "metrics off"
    return settings, [Finding(True, "configuration", f"valid ({mode}; {ops})"), *_retired_models(settings)]


def check_access(settings: Settings) -> Finding:
    """Who may use the bot: with no admin and no allowlist it refuses everyone, its operator included."""
    access = settings.access
    if unconfigured(access.admins, access.allowed):
        return Finding(
            False, "access", "no admin and no allowlist: the bot refuses everyone",
            "set PARLEY_ADMINS to your numeric user id (write to the bot: its reply tells you your id) and restart",
        )  # fmt: skip
    admins = ", ".join(str(a) for a in sorted(access.admins)) or "none"
    if access.allowed.everyone:
        others = "everyone (*)"
    else:
        others = ", ".join(sorted(access.allowed.subjects)) or "nobody else (PARLEY_ALLOWED is empty)"
    return Finding(True, "access", f"admins: {admins}; also allowed: {others}")


def _retired_models(settings: Settings) -> list[Finding]:
    """A setting naming a model OpenAI has shut down: every call to it would fail. (On Azure the names are
    deployments, which may still answer.)"""
    if settings.model.azure_endpoint:
        return []
    named = [
        ("PARLEY_MODEL", settings.model.name),
        *(("PARLEY_MODELS", choice) for choice in settings.model.choices if choice != settings.model.name),
        ("PARLEY_SUMMARY_MODEL", settings.model.summary_model),
    ]
    retired = {f"{variable} names {model} (retired {RETIRED_MODELS[model.lower()]})": None for variable, model in named
               if model.lower() in RETIRED_MODELS}  # fmt: skip
    fix = f"use {DEFAULT_MODEL} (or {', '.join(m for m in DEFAULT_MODELS if m != DEFAULT_MODEL)})"
    return [Finding(False, "models", problem, fix) for problem in retired]


# --- ffmpeg ----------------------------------------------------------------------------------------


async def _run(*command: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=NETWORK_SECONDS)
    return proc.returncode or 0, out.decode("utf-8", "replace")


def _tone(seconds: float = 0.5, rate: int = 16_000) -> WavAudio:
    samples = [int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(rate * seconds))]
    return pcm_to_wav(struct.pack(f"<{len(samples)}h", *samples), PcmFormat(rate=rate, channels=1, bits=16))


async def check_ffmpeg() -> Finding:
    fix = "install an ffmpeg built with libopus and libmp3lame (Debian: apt install ffmpeg)"
    try:
        path = find_ffmpeg()
    except RuntimeError as exc:
        return Finding(False, "ffmpeg", str(exc), fix)
    origin = "on PATH" if shutil.which("ffmpeg") == path else "bundled with imageio-ffmpeg"
    try:
        code, version = await _run(path, "-hide_banner", "-version")
        _, encoders = await _run(path, "-hide_banner", "-encoders")
    except (OSError, TimeoutError) as exc:
        return Finding(False, "ffmpeg", f"{path} ({origin}) does not run: {exc}", fix)
    name = " ".join(version.splitlines()[0].split()[:3]) if version.strip() else "ffmpeg"
    if code != 0:
        return Finding(False, "ffmpeg", f"{path} ({origin}) -version exited with {code}", fix)
    listed = {line.split()[1] for line in encoders.splitlines() if len(line.split()) > 1}
    missing = [encoder for encoder in REQUIRED_ENCODERS if encoder not in listed]
    if missing:
        return Finding(False, "ffmpeg", f"{path} ({origin}, {name}) lacks {', '.join(missing)}", fix)
    try:  # the two conversions Parley makes, on half a second of tone
        async with AudioConverter(path, timeout=NETWORK_SECONDS) as converter:
            ogg = await converter.to_voice_ogg(_tone())
            await converter.to_model_wav(ogg)
    except ParleyError as exc:
        return Finding(False, "ffmpeg", f"{path} ({origin}) cannot convert audio: {exc}", fix)
    return Finding(True, "ffmpeg", f"{path} ({origin}, {name}) with {' and '.join(REQUIRED_ENCODERS)}")


async def check_libopus() -> Finding:
    """Voice notes in and replies out are Opus, coded by libopus in the codec workers (FFmpeg's libraries
    only for other formats): a worker is asked, so it is found exactly as a voice note finds it, and the
    bot itself loads neither."""
    fix = "install libopus (Debian: apt install libopus0), or PyAV's wheel, which bundles it"
    try:
        ffmpeg = find_ffmpeg()
    except RuntimeError:
        ffmpeg = "ffmpeg"  # the workers do not run it; its own check reports it
    try:
        async with AudioConverter(ffmpeg, timeout=NETWORK_SECONDS) as converter:
            found = await converter.libopus()
    except ParleyError as exc:
        return Finding(False, "libopus", f"the codec workers did not answer: {exc}", fix)
    if found is None:
        return Finding(False, "libopus", "not found by the codec workers: voice replies go out as text", fix)
    version, path = found
    origin = "bundled with PyAV" if f"{os.sep}av.libs{os.sep}" in path else "the system's"
    return Finding(True, "libopus", f"{version} in the codec workers ({path}, {origin})")


# --- database --------------------------------------------------------------------------------------


def _writable_directory(directory: Path) -> str | None:
    """None when a file can be created in `directory` (or in the nearest existing parent, to be made)."""
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    probe = existing / f".parley-doctor-{os.getpid()}"
    try:
        probe.write_bytes(b"ok")
    except OSError as exc:
        return f"cannot create files in {existing} ({exc.strerror or exc})"
    with contextlib.suppress(OSError):
        probe.unlink()
    return None


def _inspect_database(path: Path) -> Finding:
    fix_path = "check PARLEY_DB and the permissions of the file and its directory"
    problem = _writable_directory(path.parent)
    if problem:
        return Finding(False, "database", f"{path}: {problem}", fix_path)
    if not path.exists():
        return Finding(True, "database", f"{path} does not exist yet: `parley run` creates it (directory writable)")
    try:
        applied = inspect_file(path)
    except StorageUnavailable as exc:
        return Finding(False, "database", f"{path} {exc}", fix_path)
    return _migration_finding(str(path), applied, "take a `parley backup`, then ")


def _migration_finding(where: str, applied: list[str], backup_first: str = "") -> Finding:
    known = [migration.__name__ for migration in MIGRATIONS]
    unknown = [name for name in applied if name not in known]
    if unknown:
        return Finding(
            False,
            "database",
            f"{where} has migrations this version does not know ({', '.join(unknown)})",
            "run the Parley version that made this database, or restore a backup",
        )
    if applied != known[: len(applied)] or len(applied) < len(known):
        return Finding(
            False,
            "database",
            f"{where} is at migration {len(applied)} of {len(known)}",
            f"{backup_first}start `parley run` once: it migrates the database at start-up",
        )
    return Finding(True, "database", f"{where} writable, at the latest migration ({known[-1]})")


async def check_database(path: Path) -> Finding:
    return await asyncio.to_thread(_inspect_database, path)


async def check_postgres(url: str) -> Finding:
    """Connect, prove Parley could create its tables (one made and dropped in a transaction), read the
    migrations; changes nothing."""
    where = redacted(url)
    try:
        db = await PostgresDatabase.open(url, max_connections=1)
    except StorageUnavailable as exc:
        return Finding(False, "database", str(exc), "check DATABASE_URL, the server and the password")
    try:
        await db.prove_writable()
        applied = await recorded(db)
    except Exception as exc:
        return Finding(False, "database", f"{where} is not writable ({exc})", "grant the user CREATE on the schema")
    finally:
        await db.close()
    if applied is None:
        return Finding(True, "database", f"{where} reachable and writable: `parley run` creates the tables")
    return _migration_finding(where, applied)


# --- Telegram --------------------------------------------------------------------------------------


async def check_telegram(settings: Settings) -> list[Finding]:
    bot = Bot(
        settings.telegram.token, base_url=settings.telegram.base_url, base_file_url=settings.telegram.base_file_url
    )
    try:
        async with asyncio.timeout(NETWORK_SECONDS):
            async with bot:  # initialize(): getMe
                me = bot.bot
                webhook = await bot.get_webhook_info()
    except InvalidToken:
        return [
            Finding(False, "Telegram", "the bot token was rejected", "copy TELEGRAM_BOT_TOKEN again from BotFather")
        ]
    except (NetworkError, TimeoutError) as exc:
        return [
            Finding(
                False,
                "Telegram",
                f"cannot reach {settings.telegram.api_url} ({exc or 'timed out'})",
                "check the network, a proxy, or TELEGRAM_API_URL",
            )
        ]
    except TelegramError as exc:
        return [Finding(False, "Telegram", f"getMe failed: {exc}", "check TELEGRAM_BOT_TOKEN and TELEGRAM_API_URL")]
    found = [Finding(True, "Telegram", f"reachable, token valid: @{me.username} (id {me.id})")]
    if me.can_read_all_group_messages:
        privacy = "privacy mode off: in groups it reads every message"
    else:
        privacy = "privacy mode on: in groups it sees only commands and replies to it (BotFather /setprivacy)"
    found.append(Finding(True, "Telegram groups", privacy))
    found.append(_webhook_finding(settings, webhook.url, webhook.pending_update_count, webhook.last_error_message))
    return found


def _webhook_finding(settings: Settings, url: str, pending: int, last_error: str | None) -> Finding:
    if not settings.operations.webhook:
        detail = "none (long polling)" if not url else f"set to {url}: `parley run` removes it and polls"
        return Finding(True, "Telegram webhook", f"{detail}; {pending} updates waiting")
    if url != settings.operations.webhook_url:
        shown = url or "not set"
        return Finding(True, "Telegram webhook", f"{shown}: `parley run` sets {settings.operations.webhook_url}")
    if last_error:
        return Finding(
            False,
            "Telegram webhook",
            f"{url}: Telegram's last delivery failed: {last_error}",
            "check that the URL reaches PARLEY_LISTEN through your HTTPS proxy, and PARLEY_WEBHOOK_SECRET",
        )
    return Finding(True, "Telegram webhook", f"{url}, {pending} updates waiting, no delivery errors")


# --- OpenAI ----------------------------------------------------------------------------------------


def _openai_problem(exc: openai.OpenAIError, settings: Settings, name: str, model: str) -> Finding:
    base = settings.model.base_url or "https://api.openai.com/v1"
    if isinstance(exc, openai.AuthenticationError):
        return Finding(False, "OpenAI", "the API key was rejected", "check OPENAI_API_KEY (create a new key if needed)")
    if isinstance(exc, openai.NotFoundError):
        return Finding(
            False,
            "OpenAI",
            f"{name} {model!r} is not available to this API key",
            f"choose a model the key can use for {name} (see the README's model table)",
        )
    if isinstance(exc, openai.APIConnectionError):
        return Finding(False, "OpenAI", f"cannot reach {base} ({exc})", "check the network or OPENAI_BASE_URL")
    return Finding(False, "OpenAI", f"{name} {model!r}: {type(exc).__name__}: {exc}", "see the OpenAI status page")


async def check_openai(settings: Settings, *, live: bool) -> list[Finding]:
    # The same provider the bot uses (OpenAI, or Azure OpenAI when configured), without retries.
    client = openai_client(settings).with_options(max_retries=0, timeout=NETWORK_SECONDS)
    try:
        if settings.model.azure_endpoint:  # Azure lists models, not deployments: only a real call can tell
            azure = f"Azure OpenAI at {settings.model.azure_endpoint} (deployments: see --live)"
            found = [Finding(True, "OpenAI", azure)]
            if live:
                found.append(await _live_reply(client, settings))
            return found
        names = settings.model.name, settings.model.transcribe_model
        for name, model in zip(("PARLEY_MODEL", "PARLEY_TRANSCRIBE_MODEL"), names, strict=True):
            try:
                await client.models.retrieve(model)
            except openai.OpenAIError as exc:
                return [_openai_problem(exc, settings, name, model)]
        found = [Finding(True, "OpenAI", f"reachable, key valid, {names[0]} and {names[1]} available")]
        if live:
            found.append(await _live_reply(client, settings))
        return found
    finally:
        await client.close()


async def _live_reply(client: AsyncOpenAI, settings: Settings) -> Finding:
    """One real, tiny request through Parley's own model client: text in, speech and text out."""
    model = ModelClient(client, model=settings.model.name, transcribe_model=settings.model.transcribe_model)
    started = time.perf_counter()
    try:
        reply = await model.reply([{"role": "user", "content": "Say just: OK."}], voice=settings.model.voice)
    except ParleyError as exc:
        return Finding(False, "OpenAI live", f"the model did not answer: {exc}", "check the model name and your quota")
    seconds = time.perf_counter() - started
    audio = f"{reply.audio.duration:.1f} s of audio" if reply.audio else "no audio"
    return Finding(
        True, "OpenAI live", f"{reply.usage.model} answered in {seconds:.1f} s ({audio}, {reply.text[:40]!r})"
    )


# --- all of it -------------------------------------------------------------------------------------


async def _diagnose(env: Mapping[str, str], *, live: bool, out: TextIO, secrets: tuple[str, ...]) -> bool:
    def show(findings: list[Finding]) -> bool:
        for finding in findings:
            print(redact(finding.line(), secrets), file=out, flush=True)
        return all(finding.ok for finding in findings)

    settings, findings = check_settings(env)
    ok = show(findings)
    ok = show([await check_ffmpeg()]) and ok
    ok = show([await check_libopus()]) and ok
    db_path = settings.operations.db_path if settings else Path((env.get("PARLEY_DB") or "").strip() or "parley.db")
    database_url = settings.operations.database_url if settings else None
    ok = show([await (check_postgres(database_url) if database_url else check_database(db_path))]) and ok
    if settings is None:
        skipped = "not checked: fix the configuration first"
        return show([Finding(False, "Telegram", skipped), Finding(False, "OpenAI", skipped)]) and False
    ok = show(await check_telegram(settings)) and ok
    ok = show(await check_openai(settings, live=live)) and ok
    ok = show([check_access(settings)]) and ok
    return show([check_tools(settings)]) and ok


def doctor(env: Mapping[str, str], *, live: bool = False, out: TextIO | None = None) -> int:
    """Print one line per check; 0 when every check passed, 1 otherwise."""
    secrets = tuple(
        value.strip()
        for name in ("TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY", "PARLEY_WEBHOOK_SECRET")
        if (value := env.get(name)) and value.strip()
    )
    stream = out or sys.stdout
    try:
        healthy = asyncio.run(_diagnose(env, live=live, out=stream, secrets=secrets))
    except Exception as exc:  # a bug in a check: still one plain, redacted line
        print(redact(f"{FAIL} doctor: unexpected {type(exc).__name__}: {exc}", secrets), file=stream)
        return 1
    print("all checks passed" if healthy else "some checks failed", file=stream)
    return 0 if healthy else 1
