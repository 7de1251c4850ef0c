"""Telegram's text formatting rules (HTML, MarkdownV2, legacy Markdown), approximated closely enough that
text the real Bot API would refuse with "can't parse entities" is refused here too, and that length limits
are measured the way Telegram measures them: in UTF-16 code units of the text *after* markup is removed.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = ["EntityParseError", "bot_command_entities", "parse_text", "utf16_len"]


class EntityParseError(ValueError):
    """The markup is malformed; str() is the part after "Bad Request: can't parse entities: "."""


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (emoji outside the BMP count twice)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Open:
    name: str
    start: int  # UTF-16 offset in the plain text
    byte_offset: int  # byte offset in the source, for error messages
    attrs: dict[str, str] = field(default_factory=dict)


_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_ATTR_RE = re.compile(r"""([A-Za-z_][\w-]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_CHAR_REF_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|lt|gt|amp|quot);")


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[dict[str, object]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def byte_offset(self, index: int) -> int:
        return len(self.source[:index].encode("utf-8"))

    def close(self, etype: str, start: int, extra: dict[str, object] | None = None) -> None:
        if self.length > start:
            entity: dict[str, object] = {"type": etype, "offset": start, "length": self.length - start}
            entity.update(extra or {})
            self.entities.append(entity)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def sorted_entities(self) -> list[dict[str, object]]:
        """Ordered as Telegram returns them: by offset, outer (longer) entity first."""
        return sorted(self.entities, key=lambda e: (e["offset"], -int(str(e["length"]))))


def _parse_html(text: str) -> tuple[str, list[dict[str, object]]]:
    out = _Builder(text)
    stack: list[_Open] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            offset = out.byte_offset(i)
            end = text.find(">", i)
            if end < 0:
                raise EntityParseError(f"Can't find end of the tag at byte offset {offset}")
            inner = text[i + 1 : end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise EntityParseError(f"Unexpected end tag at byte offset {offset}")
                top = stack.pop()
                if name != top.name:
                    raise EntityParseError(
                        f'Unmatched end tag at byte offset {offset}, expected "</{top.name}>", found "</{name}>"'
                    )
                extra: dict[str, object] = {}
                if top.name == "a":
                    extra["url"] = top.attrs.get("href", "")
                elif top.name == "pre" and top.attrs.get("language"):
                    extra["language"] = top.attrs["language"]
                elif top.name == "tg-emoji":
                    extra["custom_emoji_id"] = top.attrs.get("emoji-id", "")
                kind = _HTML_ENTITY_TYPES[top.name]
                if kind == "blockquote" and "expandable" in top.attrs:  # <blockquote expandable>
                    kind = "expandable_blockquote"
                if not (top.name == "code" and stack and stack[-1].name == "pre"):  # <pre><code> is one entity
                    out.close(kind, top.start, extra)
            else:
                match = re.match(r"([^\s/>]*)(.*)", inner, re.DOTALL)
                assert match is not None
                name, rest = match.group(1).lower(), match.group(2)
                if name not in _HTML_ENTITY_TYPES:
                    raise EntityParseError(f'Unsupported start tag "{name}" at byte offset {offset}')
                attrs = {
                    m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
                    for m in _ATTR_RE.finditer(rest.rstrip("/"))
                }
                if name == "span" and attrs.get("class") != "tg-spoiler":
                    raise EntityParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
                if name == "tg-emoji" and not attrs.get("emoji-id"):
                    raise EntityParseError(f'Tag "tg-emoji" must have attribute "emoji-id" at byte offset {offset}')
                if name == "code" and stack and stack[-1].name == "pre":
                    lang = attrs.get("class", "")
                    if lang.startswith("language-"):
                        stack[-1].attrs["language"] = lang[len("language-") :]
                stack.append(_Open(name, out.length, offset, attrs))
            i = end + 1
        elif ch == "&":
            ref = _CHAR_REF_RE.match(text, i)
            if ref:
                out.add(html.unescape(ref.group(0)))
                i = ref.end()
            else:
                out.add("&")
                i += 1
        else:
            out.add(ch)
            i += 1
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text, out.sorted_entities()


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "*": ("bold", "Bold"),
    "_": ("italic", "Italic"),
    "__": ("underline", "Underline"),
    "~": ("strikethrough", "Strikethrough"),
    "||": ("spoiler", "Spoiler"),
    "`": ("code", "Code"),
    "```": ("pre", "Pre"),
    "[": ("text_link", "TextUrl"),
}


def _reserved(ch: str) -> EntityParseError:
    return EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def _unclosed(entry: _Open) -> EntityParseError:
    name = _MDV2_NAMES[entry.name][1]
    return EntityParseError(f"Can't find end of {name} entity at byte offset {entry.byte_offset}")


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, object]]]:
    out = _Builder(text)
    stack: list[_Open] = []
    i = 0
    line_start = True
    while i < len(text):
        ch = text[i]
        top = stack[-1] if stack else None
        if ch == "\\":
            if i + 1 < len(text) and 1 <= ord(text[i + 1]) <= 126:
                out.add(text[i + 1])
                i += 2
                line_start = False
                continue
            raise _reserved("\\")
        if top is not None and top.name in ("`", "```"):
            if text.startswith(top.name, i):
                stack.pop()
                out.close(_MDV2_NAMES[top.name][0], top.start)
                i += len(top.name)
            else:
                out.add(ch)
                i += 1
            continue
        if ch == "]":
            if top is None or top.name != "[":
                raise _reserved("]")
            if not text.startswith("(", i + 1):
                raise EntityParseError(f"Can't find end of TextUrl entity at byte offset {top.byte_offset}")
            j = i + 2
            url: list[str] = []
            while j < len(text) and text[j] != ")":
                if text[j] == "\\" and j + 1 < len(text):
                    j += 1
                url.append(text[j])
                j += 1
            if j >= len(text):
                raise EntityParseError(f"Can't find end of a URL at byte offset {out.byte_offset(i + 2)}")
            stack.pop()
            out.close("text_link", top.start, {"url": "".join(url)})
            i = j + 1
            continue
        marker = None
        for candidate in ("```", "||", "__", "*", "_", "~", "`", "["):
            if text.startswith(candidate, i):
                marker = candidate
                break
        if marker is not None:
            open_names = [o.name for o in stack]
            if marker in open_names and marker != "[":
                while stack:
                    entry = stack.pop()
                    if entry.name == marker:
                        out.close(_MDV2_NAMES[marker][0], entry.start)
                        break
                    raise _unclosed(entry)
            else:
                stack.append(_Open(marker, out.length, out.byte_offset(i)))
                if marker == "```":
                    newline = text.find("\n", i + 3)
                    if newline >= 0 and re.fullmatch(r"[\w+#.-]*", text[i + 3 : newline]):
                        i = newline + 1
                        continue
            i += len(marker)
            line_start = False
            continue
        if ch in _MDV2_RESERVED:
            if ch == ">" and line_start:  # block quotation
                i += 1
                line_start = False
                continue
            raise _reserved(ch)
        out.add(ch)
        line_start = ch == "\n"
        i += 1
    if stack:
        raise _unclosed(stack[-1])
    return out.text, out.sorted_entities()


def _parse_markdown(text: str) -> tuple[str, list[dict[str, object]]]:
    """Legacy Markdown: *bold* _italic_ `code` ```pre``` [text](url); only markers can be escaped."""
    out = _Builder(text)
    i = 0
    types = {"*": "bold", "_": "italic", "`": "code", "```": "pre"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "*_`[":
            out.add(text[i + 1])
            i += 2
            continue
        marker = "```" if text.startswith("```", i) else ch if ch in "*_`[" else None
        if marker is None:
            out.add(ch)
            i += 1
            continue
        offset = out.byte_offset(i)
        if marker == "[":
            close = text.find("](", i + 1)
            end = text.find(")", close + 2) if close >= 0 else -1
            if close < 0 or end < 0:
                raise EntityParseError(f"Can't find end of the entity starting at byte offset {offset}")
            start = out.length
            out.add(text[i + 1 : close])
            out.close("text_link", start, {"url": text[close + 2 : end]})
            i = end + 1
            continue
        end = text.find(marker, i + len(marker))
        if end < 0:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset {offset}")
        start = out.length
        out.add(text[i + len(marker) : end])
        out.close(types[marker], start)
        i = end + len(marker)
    return out.text, out.sorted_entities()


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, object]]]:
    """Plain text and entities the real Bot API would derive; raises EntityParseError like it does."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, []
    if mode == "html":
        return _parse_html(text)
    if mode == "markdownv2":
        return _parse_markdown_v2(text)
    if mode == "markdown":
        return _parse_markdown(text)
    raise EntityParseError(f"Unsupported parse_mode {parse_mode!r}")


_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,64})?")


def bot_command_entities(text: str) -> list[dict[str, object]]:
    """The bot_command entities Telegram attaches to a user's text (only a leading command here)."""
    match = _COMMAND_RE.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
