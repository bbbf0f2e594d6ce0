"""Test helpers: read an HTML report with html.parser and say what markup and what hosts it holds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Outside data a report must show as text, never as markup: element, attribute and quote breakouts.
ADVERSARIAL = (
    '"><img src=x onerror=alert(1)>',
    "<script>alert(1)</script>",
    "' onmouseover='x",
)


@dataclass
class ParsedHtml:
    """Every start tag with its attributes, the text of every element, the CSS of style blocks."""

    tags: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    scripts: list[str] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = ParsedHtml()
        self._in: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.tags.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._in:
            while self._in.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        inside = self._in[-1] if self._in else ""
        {"script": self.out.scripts, "style": self.out.styles}.get(inside, self.out.text).append(
            data
        )


def parse(html: str) -> ParsedHtml:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.out


def injected_markup(html: str) -> list[str]:
    """What in ``html`` came from an ADVERSARIAL string as markup rather than as text."""
    doc = parse(html)
    found = []
    for tag, attrs in doc.tags:
        for name, value in attrs.items():
            if name.startswith("on"):
                found.append(f"<{tag} {name}={value!r}>: an event-handler attribute")
        if tag == "img" and not (attrs.get("src") or "").startswith("data:"):
            found.append(f"<img src={attrs.get('src')!r}>: an image that is not embedded")
        if tag == "script":
            found.append("<script>: a script element")
    found += [f"script text {s[:60]!r}" for s in doc.scripts if "alert(1)" in s]
    return found


_EXTERNAL = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_CSS_EXTERNAL = re.compile(
    r"@import\s+(url\()?\s*['\"]?\s*(https?:)?//|url\(\s*['\"]?\s*(https?:)?//", re.I
)


def external_loads(html: str) -> list[str]:
    """Every script, style, font or image ``html`` would fetch from a host (anchors excepted)."""
    doc = parse(html)
    found = []
    for tag, attrs in doc.tags:
        for name in ("src", "href", "srcset", "data", "poster"):
            value = attrs.get(name)
            if value is None or (tag == "a" and name == "href"):
                continue
            if _EXTERNAL.match(value):
                found.append(f"<{tag} {name}={value!r}>")
    for css in doc.styles + [a.get("style") or "" for _, a in doc.tags]:
        found += [f"css {m.group(0)!r}" for m in _CSS_EXTERNAL.finditer(css)]
    found += [
        f"script fetching {m.group(0)!r}"
        for s in doc.scripts
        for m in re.finditer(r"https?://\S+", s)
    ]
    return found


# What a Python repr looks like in text a person reads: None, a bool, a dict, a tuple or list of
# strings. (Tracebacks are exempt: a failing report shows its traceback below the cause.)
_REPR = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|\('|\['")
# a cell whose output is a bare str shows it quoted: '20261201T…'
_STR_REPR = re.compile(r"\s*'[^'\n]*'\s*")


def python_reprs(html: str) -> list[str]:
    """Each place where ``html``'s readable text shows a Python repr, with some context."""
    found = []
    for text in parse(html).text:
        if _STR_REPR.fullmatch(text):
            found.append(text.strip())
        for match in _REPR.finditer(text):
            context = text[max(0, match.start() - 40) : match.end() + 40]
            if not any(bad in context for bad in ADVERSARIAL):
                found.append(context.strip())
    return found
