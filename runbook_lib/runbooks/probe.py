"""Webhook conformance probe: signed test events against an integration's endpoint.

Each check sends crafted deliveries and names exactly what went wrong: valid events of every
type acknowledged (and how fast), every kind of bad signature or timestamp rejected with a 4xx
(a 5xx is its own finding: it makes providers retry forever), unknown types and duplicates
acknowledged, rotation signature lists accepted. Where the integration's event store can be read,
the probe also checks the side effects: stored exactly once, final state by highest sequence.

Probe events are marked: ``messageId`` starts with ``msg_probe_``, ``externalReference`` is
``runbook-probe``.

Each request has one overall deadline (connect, send, and the whole answer): an endpoint that
trickles its answer byte by byte is cut off like one that never answers. A request that got no
answer (refused, reset, past its deadline) fails every check that needed one, and is left out of
the latency figures, which describe answers only.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import ssl
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ..core.checks import Check, StepReport
from ..core.errors import ConfigurationError
from ..core.events import WebhookEvent
from ..core.lifecycle import reconstruct
from ..core.parameters import EventSourceParameters
from ..providers.base import Provider, get_provider
from ..reporting.progress import LIVE_SECONDS, Waiting
from ..sources import EventSource, PollingSource

__all__ = [
    "ProbeReader",
    "ProbeResult",
    "SourceReader",
    "StoreReader",
    "endpoint_answers",
    "run_probe",
]

ACK_LIMIT, ACK_WARN = 5.0, 2.0
SIDE_EFFECT_WAIT = 5.0  # seconds a stored event may take to show in the event source


class ProbeReader(Protocol):
    """What the probe needs from an integration's event store."""

    def events_for_message(self, message_id: str) -> list[WebhookEvent]: ...


class SourceReader:
    """Reads an event source (:mod:`runbook_lib.sources`); state is derived by the lifecycle engine."""

    def __init__(self, source: EventSource) -> None:
        self.source = source

    def events_for_message(self, message_id: str) -> list[WebhookEvent]:
        return self.source.events_for(message_id=message_id)


def StoreReader(path: Any) -> SourceReader:  # noqa: N802 - the former class name, kept for callers
    """A :class:`SourceReader` over the reference receiver's store at ``path``."""
    return SourceReader(PollingSource(EventSourceParameters(kind="receiver_sqlite", path=path)))


@dataclass
class Answer:
    status: int | None
    seconds: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def client_error(self) -> bool:
        return self.status is not None and 400 <= self.status < 500

    def describe(self) -> str:
        return f"HTTP {self.status}" if self.status is not None else f"no answer ({self.error})"


@dataclass
class ProbeResult:
    """The probe's checks and latency figures; renders as a step."""

    url: str
    checks: list[Check]
    latency: dict[str, float] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)

    @property
    def findings(self) -> list[str]:
        return [c.check_id for c in self.checks if c.status == "FAIL"]

    def report(self) -> StepReport:
        return StepReport(
            "probe", "Webhook conformance probe", tuple(self.checks),
            details={"endpoint": self.url, **{k: f"{v:.3f} s" for k, v in self.latency.items()}},
        )  # fmt: skip

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()


def _check_url(url: str) -> None:
    """Refuse what is not an http(s) URL before any request.

    Raises:
        ConfigurationError: naming the problem and the fix.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"the probe URL {url!r} is not an http(s) URL.",
            remedy="give the integration's webhook endpoint, e.g. "
            "https://hooks.example.com/webhooks/redcloud.",
        )


def endpoint_answers(url: str, *, timeout: float = 5.0) -> tuple[Answer, str]:
    """One unsigned GET to the endpoint: its answer (any HTTP status means it is up), and where
    it is as a report may show it (host and port only: a webhook path may hold a token)."""
    try:
        _check_url(url)
    except ConfigurationError as exc:
        return Answer(None, 0.0, exc.message), "(not an http(s) URL)"
    parsed = httpx.URL(url)
    where = f"{parsed.host}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"
    started = time.perf_counter()
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return Answer(None, time.perf_counter() - started, type(exc).__name__), where
    return Answer(response.status_code, time.perf_counter() - started), where


class _Prober:
    def __init__(
        self, url: str, secret: str, old_secret: str | None, timeout: float, provider: Provider
    ) -> None:
        self.url = url
        self.provider = provider
        self.scheme = provider.signature
        self.secret = secret
        self.old_secret = old_secret or self.scheme.generate_secret()
        self.deadline = timeout
        self._tls = ssl.create_default_context()  # one, shared by the per-request clients
        self.answers: list[Answer] = []
        self.run = secrets.token_hex(4)
        self._n = 0

    def new_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_probe_{self.run}_{self._n:03d}"

    def envelope(self, event_type: str, *, message_id: str | None = None, sequence: int = 1,
                 event_id: str | None = None, shift: int = 0) -> tuple[str, bytes]:  # fmt: skip
        """A marked test envelope; ``shift`` seconds moves its own time (a scheme that signs no
        timestamp judges freshness by the envelope's)."""
        event_id = event_id or self.new_id("evt")
        message_id = message_id or self.new_id("msg")
        conversation_id = (
            self.new_id("conv") if event_type in self.provider.lifecycle.inbound_events else ""
        )
        body = self.provider.probe_envelope(
            event_type, event_id=event_id, message_id=message_id, sequence=sequence,
            conversation_id=conversation_id, now=_now(shift),
        )  # fmt: skip
        # json.dumps' default formatting, as many senders produce it
        return event_id, json.dumps(body).encode()

    async def _status(self, body: bytes, headers: dict[str, str]) -> int:
        # A fresh connection per request: one check's 5xx (and closed socket) cannot spill into
        # another. The deadline cancels the whole exchange, however slowly the bytes come.
        async with asyncio.timeout(self.deadline):
            async with httpx.AsyncClient(
                timeout=self.deadline, follow_redirects=False, verify=self._tls
            ) as http:
                response = await http.post(self.url, content=body, headers=headers)
                return response.status_code

    def post(self, body: bytes, headers: dict[str, str]) -> Answer:
        started = time.perf_counter()
        try:
            answer = Answer(asyncio.run(self._status(body, headers)), time.perf_counter() - started)
        except TimeoutError:
            answer = Answer(
                None, time.perf_counter() - started, f"no answer within {self.deadline:g} s"
            )
        except httpx.HTTPError as exc:
            answer = Answer(None, time.perf_counter() - started, type(exc).__name__)
        self.answers.append(answer)
        return answer

    def signed(
        self, event_id: str, body: bytes, *, secret: str | None = None, **kwargs: Any
    ) -> dict[str, str]:
        return self.scheme.sign(secret or self.secret, event_id, body, **kwargs)

    def send(self, event_type: str, **kwargs: Any) -> tuple[str, Answer]:
        event_id, body = self.envelope(event_type, **kwargs)
        return event_id, self.post(body, self.signed(event_id, body))


def _now(shift: int = 0) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + shift))


def _must_reject(
    check_id: str, title: str, answers: Sequence[tuple[str, Answer]], remedy: str
) -> Check:
    """PASS when every case got a 4xx; a 5xx or a 2xx is named per case."""
    bad = [(case, a) for case, a in answers if not a.client_error]
    evidence = {case: a.describe() for case, a in answers}
    if not bad:
        return Check(check_id, title, "PASS", "rejected with 4xx: " + ", ".join(f"{c} → {a.status}" for c, a in answers), evidence)  # fmt: skip
    parts = []
    for case, a in bad:
        if a.status is not None and a.status >= 500:
            parts.append(f"{case} → {a.status} (a 5xx makes the provider retry forever)")
        elif a.ok:
            parts.append(f"{case} → {a.status} (accepted: must be rejected)")
        else:
            parts.append(f"{case} → {a.describe()}")
    return Check(check_id, title, "FAIL", "; ".join(parts), evidence, remedy=remedy)


def run_probe(
    url: str,
    secret: str,
    *,
    old_secret: str | None = None,
    reader: ProbeReader | None = None,
    burst: int = 20,
    timeout: float = 10.0,
    settle: float = 0.5,
    progress: Callable[[str], None] | None = None,
    provider: Provider | None = None,
) -> ProbeResult:
    """Probe ``url`` with events signed by ``secret``; read side effects through ``reader``.

    The provider (the default one when None) gives the event types, envelopes and signature
    scheme. ``timeout`` is each request's overall deadline, in seconds.

    Raises:
        ConfigurationError: ``url`` is not an http(s) URL.
    """
    _check_url(url)
    say = progress or (lambda line: None)
    provider = provider or get_provider()
    model = provider.lifecycle
    queued, sent, delivered = (model.event_of(s) for s in ("QUEUED", "SENT", "DELIVERED"))
    known_types = (*model.outbound_events, *sorted(model.inbound_events))
    p = _Prober(url, secret, old_secret, timeout, provider)
    header = p.scheme.signature_header  # the scheme's own signature header, whichever it is
    checks: list[Check] = []
    pool = ThreadPoolExecutor(max_workers=8)
    try:
        # Everything that is independent runs at once: a slow endpoint costs one wait, not twenty.
        say(f"probing {url} …")
        valid = {t: pool.submit(p.send, t) for t in known_types}
        burst_futures = [pool.submit(p.send, sent) for _ in range(burst)]
        unknown = pool.submit(p.send, "message.probe_unknown_type")

        def tampered() -> dict[str, list[tuple[str, Answer]]]:
            out: dict[str, list[tuple[str, Answer]]] = {}
            eid, body = p.envelope(sent)
            headers = p.signed(eid, body)
            out["missing"] = [
                (f"no {header}", p.post(body, {k: v for k, v in headers.items() if k != header}))
            ]
            eid, body = p.envelope(sent)
            out["wrong"] = [
                (
                    "signed with another secret",
                    p.post(body, p.signed(eid, body, secret=p.scheme.generate_secret())),
                )
            ]
            eid, body = p.envelope(sent)
            altered = bytearray(body)
            altered[body.index(b"runbook-probe")] = ord("R")
            out["altered"] = [("one byte altered", p.post(bytes(altered), p.signed(eid, body)))]
            eid, body = p.envelope(sent)
            compact = json.dumps(json.loads(body), separators=(",", ":")).encode()
            out["reserialized"] = [("re-serialized body", p.post(compact, p.signed(eid, body)))]
            # the signed timestamp and the envelope's own time both moved: each scheme judges one
            eid, body = p.envelope(sent, shift=-600)
            stale = p.post(body, p.signed(eid, body, timestamp=int(time.time()) - 600))
            eid, body = p.envelope(sent, shift=600)
            future = p.post(body, p.signed(eid, body, timestamp=int(time.time()) + 600))
            out["timestamps"] = [
                ("timestamp 10 min old", stale),
                ("timestamp 10 min ahead", future),
            ]
            eid, body = p.envelope(sent)
            signed = p.signed(eid, body)
            other = p.scheme.unknown_version(signed[header])
            out["version"] = [(f"only {other.split(',')[0].split('=')[0]} signature",
                               p.post(body, {**signed, header: other}))]  # fmt: skip
            malformed = []
            for label, value in p.scheme.malformed_signatures():
                eid, body = p.envelope(sent)
                malformed.append(
                    (f"signature {label}", p.post(body, {**p.signed(eid, body), header: value}))
                )
            out["malformed"] = malformed
            eid = p.new_id("evt")
            raw = (
                b'{"eventId": "'
                + eid.encode()
                + b'", "eventType": "message.sent", "data": {"body": "\xff\xfe"}}'
            )
            out["utf8"] = [("non-UTF-8 body", p.post(raw, p.signed(eid, raw)))]
            eid = p.new_id("evt")
            broken = b'{"eventId": "' + eid.encode() + b'", "eventType": '
            out["json"] = [
                ("malformed JSON, valid signature", p.post(broken, p.signed(eid, broken)))
            ]
            return out

        tampered_future = pool.submit(tampered)

        pool_dup = ThreadPoolExecutor(max_workers=2)
        dup_event: dict[str, str] = {}

        def duplicates() -> list[Answer]:
            message_id = p.new_id("msg")
            eid, body = p.envelope(delivered, sequence=3, message_id=message_id)
            dup_event["id"], dup_event["message"] = eid, message_id
            first = p.post(body, p.signed(eid, body))
            pair = list(pool_dup.map(lambda _: p.post(body, p.signed(eid, body)), range(2)))
            return [first, *pair]

        dup_future = pool.submit(duplicates)

        def rotation() -> Answer:
            eid, body = p.envelope(sent)
            return p.post(body, p.signed(eid, body, secret=[p.old_secret, p.secret]))

        rotation_future = pool.submit(rotation)
        order_message = p.new_id("msg")

        def out_of_order() -> list[Answer]:
            answers = []
            for seq, etype in ((1, queued), (3, delivered), (2, sent)):
                answers.append(p.send(etype, message_id=order_message, sequence=seq)[1])
            return answers

        order_future = pool.submit(out_of_order)

        # -- the answers, awaited with a live line ------------------------------------------
        answering = [*valid.values(), *burst_futures]
        rounds = -(-(len(answering) + 10) // 8)  # eight requests at a time, others queued too
        live = Waiting(f"answers from {url}", timeout * rounds, say=say)
        pending, waited = set(answering), time.monotonic()
        while pending:
            _, pending = wait(pending, timeout=LIVE_SECONDS)
            live.update(f"{len(answering) - len(pending)} of {len(answering)} answered")
        say(f"  {len(answering)} answers in {time.monotonic() - waited:.1f} s")
        # -- valid events ------------------------------------------------------------------
        valid_answers = {t: f.result()[1] for t, f in valid.items()}
        bad = {t: a for t, a in valid_answers.items() if not a.ok}
        checks.append(
            Check("probe.valid_events", "Valid events of every type acknowledged", "FAIL" if bad else "PASS",
                  "; ".join(f"{t} → {a.describe()}" for t, a in bad.items()) or
                  "2xx for " + ", ".join(valid_answers),
                  {t: a.describe() for t, a in valid_answers.items()},
                  remedy="answer 2xx once a verified event is stored." if bad else None)
        )  # fmt: skip
        # -- latency -----------------------------------------------------------------------
        burst_answers = [f.result()[1] for f in burst_futures]
        timed = [*burst_answers, *valid_answers.values()]
        # Only answers have a latency: a refused connection is not a fast acknowledgement.
        times = sorted(a.seconds for a in timed if a.status is not None)
        silent = [a for a in timed if a.status is None]
        latency: dict[str, float] = {}
        if times:
            p50 = statistics.median(times)
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            latency = {"p50": p50, "p95": p95, "max": times[-1]}
            summary = f"p50 {p50:.3f} s, p95 {p95:.3f} s, max {times[-1]:.3f} s over {len(times)} answered events"
        else:
            summary = "no event was answered"
        if silent:
            reasons = sorted({a.error or "no answer" for a in silent})
            summary += f"; {len(silent)} of {len(timed)} got no answer ({', '.join(reasons)})"
        slow = bool(times) and times[-1] > ACK_LIMIT
        status = "FAIL" if silent or slow else "WARN" if latency["p95"] > ACK_WARN else "PASS"
        remedy = (
            "make the endpoint reachable from the provider and answer every request."
            if silent
            else "store, then answer; do slow work after the 2xx (queue it)."
        )
        checks.append(
            Check("probe.ack_latency", f"Acknowledged within {ACK_LIMIT:g} s (warn over {ACK_WARN:g} s)", status,
                  summary, latency, remedy=None if status == "PASS" else remedy)
        )  # fmt: skip
        # -- rejections --------------------------------------------------------------------
        t = tampered_future.result()
        checks += [
            _must_reject("probe.missing_signature", "Unsigned request rejected", t["missing"],
                         f"verify {header} on every request; never accept unsigned ones."),
            _must_reject("probe.wrong_secret", "Wrong secret rejected", t["wrong"],
                         "verify with the account's signing secret."),
            _must_reject("probe.altered_body", "One-byte-altered body rejected", t["altered"],
                         "compute the HMAC over the exact raw bytes received."),
            _must_reject("probe.reserialized_body", "Re-serialized body rejected", t["reserialized"],
                         "verify the raw request bytes, never a re-serialized JSON body."),
            _must_reject("probe.timestamp_window", "Stale and future timestamps rejected", t["timestamps"],
                         "reject a signed (or, unsigned, the envelope's) timestamp more than 5 minutes "
                         "from your clock."),
            _must_reject("probe.unknown_signature_version", "Unknown signature version rejected", t["version"],
                         "accept only the signature versions the scheme defines, verified."),
            _must_reject("probe.malformed_signature_header", "Malformed signature header rejected", t["malformed"],
                         f"treat an unparseable {header} as a 4xx, never an exception."),
            _must_reject("probe.non_utf8_body", "Non-UTF-8 body rejected", t["utf8"],
                         "answer 400 for a body that is not UTF-8 JSON."),
        ]  # fmt: skip
        ((_, json_answer),) = t["json"]
        json_ok = json_answer.status is not None and json_answer.status < 500
        checks.append(
            Check("probe.malformed_json", "Malformed JSON never answered with 5xx", "PASS" if json_ok else "FAIL",
                  f"{json_answer.describe()} (4xx or 2xx are both acceptable)",
                  remedy=None if json_ok else "answer 400 for malformed JSON; a 5xx is retried forever.")
        )  # fmt: skip
        _, unknown_answer = unknown.result()
        checks.append(
            Check("probe.unknown_event_type", "Unknown event type acknowledged", "PASS" if unknown_answer.ok else "FAIL",
                  unknown_answer.describe(),
                  remedy=None if unknown_answer.ok else "acknowledge (2xx) and ignore event types you do not know.")
        )  # fmt: skip
        dup_answers = dup_future.result()
        dup_ok = all(a.ok for a in dup_answers)
        checks.append(
            Check("probe.duplicates", "Same event 3 times (2 concurrently) acknowledged", "PASS" if dup_ok else "FAIL",
                  ", ".join(a.describe() for a in dup_answers),
                  remedy=None if dup_ok else "a repeated event id is a retry: acknowledge it with 2xx.")
        )  # fmt: skip
        rot = rotation_future.result()
        checks.append(
            Check("probe.rotation", "Old + current secret signature list accepted", "PASS" if rot.ok else "FAIL",
                  rot.describe(),
                  remedy=None if rot.ok else "try every space-separated signature; accept if any verifies.")
        )  # fmt: skip
        order_answers = order_future.result()
        pool_dup.shutdown()
        all_answers = p.answers
        redirects = [a for a in all_answers if a.status is not None and 300 <= a.status < 400]
        gone = [a for a in all_answers if a.status == 410]
        status_rg = "FAIL" if redirects or gone else "PASS"
        summary_rg = "no 3xx or 410 answers"
        if redirects or gone:
            summary_rg = (
                f"{len(redirects)} redirect(s): providers treat 3xx as failure; "
                if redirects
                else ""
            ) + (f"{len(gone)} × 410: the provider disables the endpoint" if gone else "")
        checks.append(
            Check("probe.redirects_and_gone", "No redirects or 410 Gone", status_rg, summary_rg,
                  remedy=None if status_rg == "PASS" else "serve the webhook URL directly (no redirect), never 410.")
        )  # fmt: skip
        # -- side effects ------------------------------------------------------------------
        if reader is None:
            checks.append(
                Check(
                    "probe.stored_once",
                    "Duplicates stored exactly once",
                    "SKIP",
                    "no event store to read (pass an event source)",
                )
            )
            checks.append(
                Check(
                    "probe.final_state",
                    "Final state by sequence (or rank)",
                    "SKIP",
                    "no event store to read",
                )
            )
        else:
            time.sleep(settle)

            def copies_stored() -> int:
                stored = reader.events_for_message(dup_event["message"])
                return sum(1 for e in stored if e.event_id == dup_event["id"])

            # An export the source reads may lag the endpoint: wait for the first copy, no longer.
            copies, waited_until = copies_stored(), time.monotonic() + SIDE_EFFECT_WAIT
            while copies == 0 and time.monotonic() < waited_until:
                time.sleep(0.1)
                copies = copies_stored()
            checks.append(
                Check("probe.stored_once", "Duplicates stored exactly once", "PASS" if copies == 1 else "FAIL",
                      f"the event sent 3 times is stored {copies} time(s)", {"copies": copies},
                      remedy=None if copies == 1 else "make the handler idempotent on the event id (unique key).")
            )  # fmt: skip
            state_fn = getattr(reader, "message_state", None)
            if callable(state_fn):
                state = state_fn(order_message)
            else:
                lifecycle = reconstruct(
                    reader.events_for_message(order_message), model
                ).messages.get(order_message)
                state = lifecycle.state if lifecycle else None
            ok = state == "DELIVERED" and all(a.ok for a in order_answers)
            checks.append(
                Check("probe.final_state", "Final state by sequence (or rank)", "PASS" if ok else "FAIL",
                      f"{queued}, {delivered}, {sent} sent (sequences 1, 3, 2): final state {state} "
                      f"(expected DELIVERED, from {delivered})",
                      remedy=None if ok else "apply an event only if its sequence (or, without one, "
                      "its state's rank) is higher than the highest applied; never move backwards.")
            )  # fmt: skip
        return ProbeResult(url=url, checks=checks, latency=latency, answers=list(all_answers))
    finally:
        pool.shutdown(wait=True)
