"""The leak guard: after every run, no secret value may be left in any artifact.

Every secret resolved at run time is registered (:data:`runbook_lib.secrets.REGISTRY`). The
notebook runs in a separate kernel process, so the kernel hands what it registers to the CLI
through a named pipe (:class:`SecretChannel`, wire in :mod:`runbook_lib.security.secret_channel`): values
cross in memory, never through a file on disk. After the run the CLI scans every artifact
(executed notebook with papermill metadata, HTML, summary and evidence JSON, logs) for each value
in every encoding the artifacts apply, alone or nested up to :data:`MAX_LAYERS` deep:

- the value itself and its base64 / base64url forms, with or without padding;
- on top of each, per character: JSON string escaping (``\\"``, ``\\\\``, ``\\/``, ``\\uXXXX``
  in either case, or raw UTF-8), HTML escaping (named, decimal and hex character references, as
  ``html.escape`` with or without ``quote`` and nbconvert/markupsafe write them), Python
  ``repr``/``ascii`` escaping (tracebacks), and percent-encoding (any safe set, ``+`` for space,
  upper- or lower-case hex).

Each value becomes one pattern (a group of alternatives per character) and all of them one
compiled alternation, longest first, built once per set of secrets; a file is searched only if
it contains the longest run of letters and digits of some value (no encoding changes those). Hits
are redacted in place and fail the run with its own exit code. Absolute local paths (project
folder, virtualenv, home, temp) are rewritten where a whole path starts, never inside another
path or a URL. :func:`redacted_console` applies the same redaction to the CLI's own output.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import json
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

from .secret_channel import CHANNEL_ENV, END_OF_CHANNEL, decode_line, write_fifo
from .secrets import REGISTRY

__all__ = [
    "LeakHit",
    "LeakReport",
    "RedactingStream",
    "Redactor",
    "SecretChannel",
    "encodings",
    "redacted_console",
    "redactor_for",
    "scan_and_redact",
]

REDACTED = "[REDACTED]"
ARTIFACT_SUFFIXES = (".ipynb", ".html", ".json", ".log", ".txt", ".yaml")
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words
MAX_LAYERS = 3  # e.g. HTML-escaped, inside a JSON string, inside the notebook's JSON
_ANCHOR = re.compile(r"[A-Za-z0-9]+")  # no encoding below changes ASCII letters and digits


# -- forms ------------------------------------------------------------------------------------
def _json(text: str, *, ascii_only: bool = True) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)[1:-1]


def _json_all_unicode(text: str, *, upper: bool = False) -> str:
    """JSON with every character that is not a letter or digit as ``\\uXXXX`` (as Jinja's
    ``tojson`` does for ``<>&'``)."""
    out = []
    for c in text:
        if c.isascii() and c.isalnum():
            out.append(c)
            continue
        units = c.encode("utf-16-be")
        for i in range(0, len(units), 2):
            unit = int.from_bytes(units[i : i + 2], "big")
            out.append(f"\\u{unit:04X}" if upper else f"\\u{unit:04x}")
    return "".join(out)


def _markupsafe(text: str) -> str:
    """What nbconvert's templates (Jinja/markupsafe ``escape``) write."""
    return html.escape(text, quote=False).replace('"', "&#34;").replace("'", "&#39;")


def _python_repr(text: str, *, ascii_only: bool = False) -> str:
    """A ``str`` repr's escaping, quotes included (tracebacks and verbose locals write it)."""
    escaped = (ascii(text) if ascii_only else repr(text))[1:-1]
    return escaped.replace("\\'", "'").replace("'", "\\'").replace('"', '\\"')


def _percent_lower(text: str, *, plus: bool = False) -> str:
    encoded = (quote_plus if plus else quote)(text, safe="")
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)


# Every encoder an artifact applies, each a whole-string function that works character by
# character (so the scan can match any mix of them, per character).
_ENCODERS = (
    _json,
    functools.partial(_json, ascii_only=False),
    lambda t: _json(t).replace("/", "\\/"),
    _json_all_unicode,
    functools.partial(_json_all_unicode, upper=True),
    html.escape,
    functools.partial(html.escape, quote=False),
    _markupsafe,
    _python_repr,
    functools.partial(_python_repr, ascii_only=True),
    functools.partial(quote, safe=""),
    functools.partial(quote_plus, safe=""),
    _percent_lower,
    functools.partial(_percent_lower, plus=True),
)


@functools.lru_cache(maxsize=4096)
def _char_forms(c: str) -> tuple[str, ...]:
    """Every way ``c`` can be written after up to :data:`MAX_LAYERS` encodings, longest first."""
    forms = {c}
    frontier = {c}
    for _ in range(MAX_LAYERS):
        frontier = {encode(text) for text in frontier for encode in _ENCODERS} - forms
        forms |= frontier
    return tuple(sorted(forms, key=lambda f: (-len(f), f)))


def _seeds(value: str) -> dict[str, str]:
    """The value and its base64 forms: the texts the per-character encodings apply to."""
    raw = value.encode()
    b64, b64url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    seeds = {
        "raw": value,
        "base64": b64,
        "base64url": b64url,
        "base64 (unpadded)": b64.rstrip("="),
        "base64url (unpadded)": b64url.rstrip("="),
    }
    unique: dict[str, str] = {}
    for name, seed in seeds.items():
        if len(seed) >= MIN_SECRET_LENGTH and seed not in unique.values():
            unique[name] = seed
    return unique


def encodings(value: str) -> dict[str, str]:
    """The named forms in which ``value`` could appear in an artifact (for tests and hit names).

    The scan itself matches more (every mix of the per-character encodings, see the module
    docstring); these are the forms encoders actually write.
    """
    forms: dict[str, str] = {}
    for seed_name, seed in _seeds(value).items():
        prefix = "" if seed_name == "raw" else f"{seed_name}, "
        base = {
            "raw" if seed_name == "raw" else seed_name: seed,
            f"{prefix}url-encoded": quote(seed, safe=""),
            f"{prefix}url-encoded+": quote_plus(seed, safe=""),
            f"{prefix}url-encoded (path)": quote(seed),
            f"{prefix}url-encoded (lower-case hex)": _percent_lower(seed),
            f"{prefix}html-escaped": html.escape(seed),
            f"{prefix}html-escaped (quote=False)": html.escape(seed, quote=False),
            f"{prefix}html-escaped (&#39;)": _markupsafe(seed),
            f"{prefix}json-escaped": _json(seed),
            f"{prefix}json-escaped (UTF-8)": _json(seed, ascii_only=False),
            f"{prefix}json-escaped (\\/)": _json(seed).replace("/", "\\/"),
        }
        nested = {
            f"{prefix}html-escaped, in JSON": _json(html.escape(seed)),
            f"{prefix}html-escaped (&#39;), in JSON": _json(_markupsafe(seed)),
            f"{prefix}json-escaped, in JSON": _json(_json(seed)),
            f"{prefix}json-escaped (UTF-8), in JSON": _json(_json(seed, ascii_only=False)),
            f"{prefix}json-escaped, html-escaped": html.escape(_json(seed)),
            f"{prefix}json-escaped, url-encoded": quote(_json(seed), safe=""),
        }
        for name, form in {**base, **nested}.items():
            if len(form) >= MIN_SECRET_LENGTH and form not in forms.values():
                forms[name] = form
    return forms


class _Seed:
    """One text to look for (a value or its base64), with its per-character pattern."""

    def __init__(self, label: str, name: str, text: str, named_forms: dict[str, str]) -> None:
        self.label, self.name, self.text, self.named_forms = label, name, text, named_forms
        runs = list(_ANCHOR.finditer(text))
        anchor = max(runs, key=lambda m: len(m.group()), default=None)
        self.anchor = anchor.group() if anchor else ""
        start, end = (anchor.start(), anchor.end()) if anchor else (0, 0)
        # How far before and after an anchor a match can reach, encoded.
        self.before = sum(len(_char_forms(c)[0]) for c in text[:start])
        self.after = sum(len(_char_forms(c)[0]) for c in text[end:])

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        """Compiled only when the anchor was seen: most runs never need it."""
        parts = []
        for c in self.text:
            alternatives = _char_forms(c)
            if len(alternatives) == 1:
                parts.append(re.escape(c))
            else:
                parts.append("(?:" + "|".join(map(re.escape, alternatives)) + ")")
        return re.compile("".join(parts))

    def matches(self, text: str) -> Iterator[tuple[int, int]]:
        if not self.anchor:
            yield from (m.span() for m in self.regex.finditer(text))
            return
        position = text.find(self.anchor)
        while position >= 0:
            lo = max(0, position - self.before)
            hi = min(len(text), position + len(self.anchor) + self.after)
            for match in self.regex.finditer(text, lo, hi):
                yield match.span()
            position = text.find(self.anchor, position + 1)

    def encoding_of(self, found: str) -> str:
        if found == self.text:
            return self.name
        return self.named_forms.get(found) or (
            "escaped" if self.name == "raw" else f"{self.name}, escaped"
        )


class Redactor:
    """Every form of a set of secrets, prepared once; redacts text and says what it found."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        labels: dict[str, str] = {}
        for value, label in secrets:
            if len(value) >= MIN_SECRET_LENGTH:
                labels.setdefault(value, label)
        self.secrets_checked = len(labels)
        self._seeds: list[_Seed] = []
        for value, label in labels.items():
            named = {form: name for name, form in reversed(encodings(value).items())}
            self._seeds += [_Seed(label, n, s, named) for n, s in _seeds(value).items()]

    def redact(self, text: str) -> tuple[str, Counter[tuple[str, str]]]:
        """``text`` with every form replaced by :data:`REDACTED`; hits by (label, encoding)."""
        hits: Counter[tuple[str, str]] = Counter()
        found = {
            (start, end, index)
            for index, seed in enumerate(self._seeds)
            if seed.anchor in text
            for start, end in seed.matches(text)
        }
        if not found:
            return text, hits
        out, done = [], 0
        # Leftmost first, the longest of those that start together: a form inside another
        # form (a secret inside its own Basic header) goes with the outer one.
        for start, end, index in sorted(found, key=lambda f: (f[0], f[0] - f[1])):
            if start < done:
                continue
            seed = self._seeds[index]
            hits[(seed.label, seed.encoding_of(text[start:end]))] += 1
            out += [text[done:start], REDACTED]
            done = end
        out.append(text[done:])
        return "".join(out), hits


@functools.lru_cache(maxsize=8)
def _cached_redactor(secrets: tuple[tuple[str, str], ...]) -> Redactor:
    return Redactor(secrets)


def redactor_for(secrets: Iterable[tuple[str, str]] | None = None) -> Redactor:
    """The :class:`Redactor` of ``secrets`` (default: the registry), reused while they are the same."""
    return _cached_redactor(tuple(REGISTRY.items() if secrets is None else secrets))


# -- the scan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class LeakHit:
    artifact: str
    label: str
    encoding: str
    count: int

    def to_dict(self) -> dict[str, object]:
        return {
            "artifact": self.artifact,
            "secret": self.label,
            "encoding": self.encoding,
            "count": self.count,
        }


@dataclass
class LeakReport:
    """What the scan found and rewrote."""

    scanned: list[str] = field(default_factory=list)
    hits: list[LeakHit] = field(default_factory=list)
    paths_rewritten: int = 0
    secrets_checked: int = 0

    @property
    def clean(self) -> bool:
        return not self.hits

    def to_dict(self) -> dict[str, object]:
        return {
            "status": "CLEAN" if self.clean else "LEAK",
            "secretsChecked": self.secrets_checked,
            "artifactsScanned": self.scanned,
            "hits": [h.to_dict() for h in self.hits],
            "localPathsRewritten": self.paths_rewritten,
        }


def _local_paths(project_root: Path) -> list[tuple[str, str]]:
    """Absolute paths to rewrite, longest first so nested ones win."""
    pairs = {
        str(Path(sys.prefix).resolve()): "<venv>",
        str(project_root.resolve()): "<project>",
        str(Path(tempfile.gettempdir()).resolve()): "<tmp>",
    }
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        pairs[home] = "~"
    return sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)


# A path starts after a character that cannot be part of a path or URL (or after a colour code,
# raw or JSON-escaped, as tracebacks write them), and ends where the next path segment starts.
_PATH_CHAR = r"[\w~%+@-]"
_BEFORE = r"(?:(?<![\w.~%/+@\\-])|(?P<ansi>(?:\x1b|\\u001b|\\u001B)\[[0-9;]*m))"
_AFTER = rf"(?!{_PATH_CHAR}|\.{_PATH_CHAR})"


def _path_regex(pairs: list[tuple[str, str]]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(path) for path, _ in pairs)
    return re.compile(f"{_BEFORE}(?P<path>{alternatives}){_AFTER}")


def rewrite_local_paths(text: str, pairs: list[tuple[str, str]]) -> tuple[str, int]:
    """``text`` with each whole absolute path prefix in ``pairs`` replaced by its placeholder."""
    if not pairs or not any(path in text for path, _ in pairs):
        return text, 0
    placeholders = dict(pairs)
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return (match.group("ansi") or "") + placeholders[match.group("path")]

    return _path_regex(pairs).sub(replace, text), count


def scan_and_redact(
    folder: Path,
    *,
    secrets: Iterable[tuple[str, str]] | None = None,
    project_root: Path | None = None,
    extra_files: Iterable[Path] = (),
) -> LeakReport:
    """Scan every artifact in ``folder``; redact secret forms and absolute paths in place."""
    redactor = redactor_for(secrets)
    paths = _local_paths(project_root or Path.cwd())
    html_paths = [(absolute, html.escape(placeholder)) for absolute, placeholder in paths]
    report = LeakReport(secrets_checked=redactor.secrets_checked)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in ARTIFACT_SUFFIXES)
    for path in [*files, *extra_files]:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        report.scanned.append(path.name)
        changed, hits = redactor.redact(text)
        for (label, encoding), count in hits.items():
            report.hits.append(LeakHit(path.name, label, encoding, count))
        # In HTML a placeholder is text, not an element: <tmp> would be parsed as a tag.
        pairs = html_paths if path.suffix == ".html" else paths
        changed, rewritten = rewrite_local_paths(changed, pairs)
        report.paths_rewritten += rewritten
        if changed != text:
            path.write_text(changed, encoding="utf-8")
    return report


# -- the console ------------------------------------------------------------------------------
class RedactingStream:
    """A text stream that redacts every registered secret form before writing, line by line."""

    def __init__(self, stream: TextIO, secrets: Any = None) -> None:
        self._stream = stream
        self._secrets = secrets  # a callable returning (value, label) pairs; default: REGISTRY
        self._pending = ""
        self._lock = threading.Lock()

    def _redact(self, text: str) -> str:
        secrets = self._secrets() if self._secrets is not None else None
        return redactor_for(secrets).redact(text)[0]

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            head, newline, tail = self._pending.rpartition("\n")
            if newline:
                self._stream.write(self._redact(head + newline))
                self._pending = tail
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self._stream.write(self._redact(self._pending))
                self._pending = ""
            self._stream.flush()

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, ...
        return getattr(self._stream, name)


@contextlib.contextmanager
def redacted_console() -> Iterator[None]:
    """Route ``sys.stdout`` and ``sys.stderr`` through :class:`RedactingStream` meanwhile."""
    saved = sys.stdout, sys.stderr
    wrapped = [
        s if isinstance(s, RedactingStream) else RedactingStream(s)
        for s in (sys.stdout, sys.stderr)
    ]
    sys.stdout, sys.stderr = wrapped
    try:
        yield
    finally:
        for stream in wrapped:
            with contextlib.suppress(Exception):
                stream.flush()
        sys.stdout, sys.stderr = saved


# -- the channel from the kernel --------------------------------------------------------------
class SecretChannel:
    """A named pipe the kernel writes registered secrets to, read by the CLI in a thread.

    What arrives is kept in :attr:`received` and registered in this process too, so the
    console redaction knows it.
    """

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="runbook-secrets-"))
        os.chmod(self._dir, 0o700)
        self.path = self._dir / "channel"
        os.mkfifo(self.path, 0o600)
        self.received: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._read, name="secret-channel", daemon=True)

    def _read(self) -> None:
        # Read-write, so the pipe always has a writer: no EOF between two kernel writes, hence
        # no window in which a writer meets a closed pipe (EPIPE) and loses a value.
        with open(os.open(self.path, os.O_RDWR), "rb") as fifo:
            for line in fifo:
                if line == END_OF_CHANNEL:
                    return
                with contextlib.suppress(ValueError, UnicodeDecodeError):
                    value, label = decode_line(line)
                    self.received.append((value, label))
                    REGISTRY.register(value, label, forward=False)

    def __enter__(self) -> SecretChannel:
        self._thread.start()
        return self

    @property
    def env(self) -> dict[str, str]:
        """What the kernel needs in its environment to find the channel."""
        return {CHANNEL_ENV: str(self.path)}

    def __exit__(self, *exc: object) -> None:
        write_fifo(self.path, END_OF_CHANNEL)  # ends the reader's loop
        self._thread.join(5)
        with contextlib.suppress(OSError):
            self.path.unlink()
            self._dir.rmdir()
