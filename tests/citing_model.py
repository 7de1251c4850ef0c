"""A stand-in for how the summary model answers cited-points and cited-answer requests (a JSON schema).

Plugged into FakeOpenAI.reply_text: it reads the numbered log lines Parley sends ("#id [date time] Name:
text") and answers with schema-valid JSON as a model would: one point per speaker citing that speaker's
lines; merged points citing the ids shown; answers citing the lines that share words with the question.
It can be told to cite messages that are not in the log, as models sometimes do. Requests without a JSON
schema get the stand-in's usual "You said: …".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

LINE = re.compile(r"^#(\d+) \[[^\]]+\] (.+?)(?: \(reply to #\d+\))?(?: \(forwarded from .+?\))?: (.*)$")
MERGED = re.compile(r"^- (.*) \[((?:#\d+(?:, )?)+)\]$")


def _texts(body: dict[str, Any]) -> list[str]:
    texts = []
    for message in body["messages"]:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, str):
            texts.append(content)
    return texts


@dataclass
class CitingModel:
    wrong_ids: list[int] = field(default_factory=list)
    """Ids to cite in the next answers that do not exist in the log, one per answer, then it behaves."""
    wrong_every_time: bool = False
    calls: list[str] = field(default_factory=list)
    """The schema name of each call answered ("cited_points", "cited_answer", or "" for plain ones)."""

    def __call__(self, body: dict[str, Any]) -> str:
        schema = (body.get("response_format") or {}).get("json_schema", {}).get("name", "")
        self.calls.append(schema)
        asked = _texts(body)
        if schema == "cited_points":
            points = self._points(asked[0])
            if len(asked) > 1:  # asked again for the points whose citations failed: only those come back
                points = [p for p in points if p["text"] in asked[-1]]
            return json.dumps({"points": points}, ensure_ascii=False)
        if schema == "cited_answer":
            return json.dumps(self._answer(asked[0]), ensure_ascii=False)
        return f"You said: {asked[-1] if asked else ''}"

    def _wrong(self) -> int | None:
        if self.wrong_every_time and self.wrong_ids:
            return self.wrong_ids[0]
        return self.wrong_ids.pop(0) if self.wrong_ids else None

    def _points(self, material: str) -> list[dict[str, Any]]:
        merged = [MERGED.match(line) for line in material.splitlines()]
        if any(merged):
            ids = [int(i.strip("#")) for m in merged if m for i in m.group(2).split(", ")]
            texts = [m.group(1) for m in merged if m]
            points = [{"text": " ".join(texts[i : i + 3]), "messages": ids[i : i + 3]} for i in range(0, len(texts), 3)]
        else:
            by_author: dict[str, list[tuple[int, str]]] = {}
            for line in material.splitlines():
                found = LINE.match(line)
                if found:
                    by_author.setdefault(found.group(2), []).append((int(found.group(1)), found.group(3)))
            points = [
                {"text": f"{author} said: {said[0][1]}", "messages": [i for i, _ in said[:3]]}
                for author, said in by_author.items()
            ]
        wrong = self._wrong()
        if wrong is not None and points:
            points[0]["messages"] = [*points[0]["messages"], wrong]
        return points

    def _answer(self, material: str) -> dict[str, Any]:
        log, _, question = material.rpartition("\n\nQuestion: ")
        words = {w for w in re.findall(r"\w+", question.casefold()) if len(w) > 3}
        hits = []
        for line in log.splitlines():
            found = LINE.match(line)
            if found and words & set(re.findall(r"\w+", found.group(3).casefold())):
                hits.append((int(found.group(1)), found.group(2), found.group(3)))
        if not hits:
            return {"answer": "The messages do not say.", "messages": []}
        ids = [i for i, _, _ in hits[:3]]
        wrong = self._wrong()
        if wrong is not None:
            ids.append(wrong)
        return {"answer": " ".join(f"{who} said: {text}" for _, who, text in hits[:3]), "messages": ids}
