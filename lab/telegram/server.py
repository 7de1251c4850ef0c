"""The Bot API over HTTP: token check, request parsing, injected faults and delays, file downloads.

Methods come from the api_* families; an unknown method is answered 404 as Telegram does, and a bug in the
stand-in itself is recorded in `internal_errors` (the test fixtures fail on it) rather than passed off as
a Telegram error.
"""

from __future__ import annotations

import asyncio
import re
import time
import traceback
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..server import LabServer
from . import api_chats, api_edit, api_profile, api_send, api_updates
from .errors import TelegramAPIError
from .handler import Methods
from .params import read_params
from .records import ApiCall
from .state import BotIdentity, TelegramState

__all__ = ["TelegramServer"]

METHODS: Methods = {
    **api_updates.METHODS,
    **api_profile.METHODS,
    **api_send.METHODS,
    **api_edit.METHODS,
    **api_chats.METHODS,
}

_FAULT_DESCRIPTIONS = {
    400: "Bad Request: injected failure",
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class _Fault:
    error_code: int
    description: str
    retry_after: int | None
    times: int


class TelegramServer(LabServer):
    """Serves TelegramState over HTTP the way api.telegram.org does, and records every call."""

    def __init__(self, bot: BotIdentity) -> None:
        super().__init__()
        self.state = TelegramState(bot, self.signal)
        self.calls: list[ApiCall] = []
        self.internal_errors: list[str] = []
        self.unauthorized: list[str] = []
        """Paths requested with a wrong token (they never reach `calls`)."""
        self.unknown_methods: list[str] = []
        """Methods the stand-in does not implement (answered 404 as Telegram answers unknown methods)."""
        self._faults: dict[str, list[_Fault]] = {}
        self._delays: dict[str, float] = {}

    def fail_next(
        self,
        method: str,
        *,
        error_code: int = 400,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail like the real API would (429 carries retry_after)."""
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            if error_code == 429:
                description = f"Too Many Requests: retry after {retry_after}"
            else:
                description = _FAULT_DESCRIPTIONS.get(error_code, "Internal Server Error")
        self._faults.setdefault(method.lower(), []).append(_Fault(error_code, description, retry_after, times))

    def delay(self, method: str, seconds: float) -> None:
        """Add latency to every call of `method` (0 removes it)."""
        self._delays[method.lower()] = seconds

    # -- HTTP ------------------------------------------------------------------------------------------
    @staticmethod
    def _error(err: TelegramAPIError) -> web.Response:
        body: dict[str, Any] = {"ok": False, "error_code": err.code, "description": err.description}
        if err.parameters:
            body["parameters"] = err.parameters
        return web.json_response(body, status=err.code)

    @staticmethod
    def _token_error(token: str) -> TelegramAPIError:
        # The real server answers 404 to a malformed token and 401 to a well-formed but wrong one.
        if re.fullmatch(r"\d+:[A-Za-z0-9_-]+", token):
            return TelegramAPIError(401, "Unauthorized")
        return TelegramAPIError(404, "Not Found")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            return await self._serve_file(path[len("/file/bot") :])
        if not path.startswith("/bot"):
            return self._error(TelegramAPIError(404, "Not Found"))
        token, _, method = path[len("/bot") :].partition("/")
        if token != self.state.bot.token:
            self.unauthorized.append(path.replace(token, "<token>", 1) if token else path)
            self.signal.notify()
            return self._error(self._token_error(token))
        if not method or "/" in method:
            return self._error(TelegramAPIError(404, "Not Found"))
        call = ApiCall(method=method, params={}, files={}, at=time.monotonic())
        self.calls.append(call)
        try:
            call.params, call.files, call.file_names = await read_params(request)
            self.signal.notify()
            if delay := self._delays.get(method.lower()):
                await asyncio.sleep(delay)
            self._maybe_fault(method)
            handler = METHODS.get(method.lower())
            if handler is None:
                self.unknown_methods.append(method)
                raise TelegramAPIError(404, "Not Found")
            result = await handler(self.state, call)
        except TelegramAPIError as err:
            call.ok, call.error, call.status = False, err.description, err.code
            return self._error(err)
        except ConnectionResetError:
            # The client hung up while its request was being read: not a lab failure (marked abandoned below).
            call.ok, call.error = False, "client disconnected"
            raise
        except Exception as exc:  # a bug in the lab itself: make it loud
            self.internal_errors.append(f"{method}: {''.join(traceback.format_exception(exc))}")
            call.ok, call.error, call.status = False, f"lab crashed: {exc!r}", 500
            return self._error(TelegramAPIError(500, "Internal Server Error"))
        finally:
            call.finished = time.monotonic()
            transport = request.transport
            # The client hung up before the answer (e.g. PTB cancelling its long-poll on shutdown): the
            # answer reaches nobody, so tests can tell this apart from an error the bot actually saw.
            call.abandoned = transport is None or transport.is_closing()
            self.signal.notify()
        call.ok, call.status, call.result = True, 200, result
        return web.json_response({"ok": True, "result": result})

    def _maybe_fault(self, method: str) -> None:
        queue = self._faults.get(method.lower())
        if not queue:
            return
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        params = {"retry_after": fault.retry_after} if fault.retry_after is not None else None
        raise TelegramAPIError(fault.error_code, fault.description, params)

    async def _serve_file(self, rest: str) -> web.Response:
        token, _, file_path = rest.partition("/")
        if token != self.state.bot.token:
            return self._error(self._token_error(token))
        files = self.state.files
        file_id = files.paths.get(file_path)
        files.downloads.append(file_path)
        self.signal.notify()
        if file_id is None:
            return self._error(TelegramAPIError(404, "Not Found"))
        return web.Response(body=files.by_id[file_id].data, content_type="application/octet-stream")
