"""PARLEY_LOG_FORMAT=json: one JSON object per line, and redacted as thoroughly as the text format."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from parley.logs import REDACTED, configure_logging

TOKEN = "123456:SECRET-token-abcdefghijklmnop"
KEY = 'sk-"odd\\key/with\tescapes-0123'  # characters JSON escapes: a secret must not survive as \" or \\


@contextlib.contextmanager
def configured(log_format: str) -> Iterator[io.StringIO]:
    """configure_logging as `parley run` calls it, writing to a buffer; the root logger restored after.

    Handlers that were there before (pytest's, the suite's secret check) are put back alongside at once.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", [TOKEN, KEY], stream=stream, log_format=log_format)
    ours = root.handlers[-1]
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(ours)
        root.setLevel(level)


def test_each_record_is_one_redacted_json_line() -> None:
    log = logging.getLogger("parley.test")
    with configured("json") as stream:
        log.info("calling https://api.telegram.org/bot%s/getMe", TOKEN)
        log.warning("chat=%s refused", 42, extra={"chat_id": 42, "url": f"/bot{TOKEN}/x", "key": KEY})
        try:
            raise RuntimeError(f"the API said no to {KEY}")
        except RuntimeError:
            log.exception("model call failed")

    output = stream.getvalue()
    lines = output.splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["message"] == f"calling https://api.telegram.org/bot{REDACTED}/getMe"
    assert (first["level"], first["logger"]) == ("INFO", "parley.test")
    assert first["time"].endswith("+00:00")
    assert second["message"] == "chat=42 refused"
    assert (second["chat_id"], second["url"], second["key"]) == (42, f"/bot{REDACTED}/x", REDACTED)
    assert third["message"] == "model call failed"
    assert (
        third["exception"].startswith("Traceback")
        and f"RuntimeError: the API said no to {REDACTED}" in third["exception"]
    )
    for leak in (TOKEN, "SECRET-token", KEY, json.dumps(KEY)[1:-1], "odd\\\\key"):
        assert leak not in output


def test_text_format_is_redacted_the_same_way() -> None:
    with configured("text") as stream:
        logging.getLogger("parley.test").info("token %s", TOKEN)
    [line] = stream.getvalue().splitlines()
    assert line.endswith(f"INFO parley.test: token {REDACTED}")
