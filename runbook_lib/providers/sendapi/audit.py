"""The incident audit over SendAPI events: per channel, email reputation, quota, session health.

One provider audit step (``audit_steps``, after the common funnel), read-only:

- **funnel per channel** (sms, whatsapp, email): the common engine's rows (``run.table``), split by
  the channel each message's events belong to (:data:`.mapping.EVENT_STATES`);
- **email bounce and complaint rates**: bounced / complained messages among the window's emails,
  WARN / FAIL at the ``sendapi:`` thresholds (``bounce_rate_warn`` …);
- **quota consumption**: ``GET /v1/account/usage`` now, per quota (WARN at ``quota_warn_share``,
  FAIL when exhausted), and the rate-limit headroom the last answer reported;
- **session health**: the window's ``session.disconnected`` / ``session.connected`` events folded
  per session (:func:`.mapping.fold_events`: dedupe by id, latest timestamp wins), and the declared
  session's current state (``GET /v1/whatsapp/sessions/{id}``).

Each finding that explains an incident is also a failure-domain signal (``StepResult.signals``):
``WhatsApp session``, ``email domain``, ``quota / rate limit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from ...core.checks import Check
from ...core.errors import RunbookError
from ..base import StepResult
from .mapping import EVENT_STATES, RANKS, SendApiEvent, SessionHealth, fold_events

__all__ = ["ChannelFunnel", "SendApiAuditFindings", "audit_step", "channel_funnels"]

DOMAIN_SESSION = "WhatsApp session"
DOMAIN_EMAIL = "email domain"
DOMAIN_QUOTA = "quota / rate limit"
_QUOTA_NAMES = {"sms": "sms", "whatsapp": "whatsapp_messages", "email": "emails"}


@dataclass(frozen=True)
class ChannelFunnel:
    """One channel's messages in the window: each state counted apart, and its own outcomes."""

    channel: str
    messages: int
    sent: int
    delivered: int
    failed: int
    not_final: int
    outcomes: Mapping[str, int] = field(default_factory=dict)  # read, opened, bounced, complained …

    def rate(self, outcome: str) -> float | None:
        """``outcome``'s share of the channel's messages (None when there are none)."""
        return self.outcomes.get(outcome, 0) / self.messages if self.messages else None

    def row(self) -> list[Any]:
        extra = ", ".join(f"{k} {v}" for k, v in self.outcomes.items()) or "—"
        return [self.channel, self.messages, self.sent, self.delivered, self.failed,
                self.not_final, extra]  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.channel, "messages": self.messages, "sent": self.sent,
                "delivered": self.delivered, "failed": self.failed, "notFinal": self.not_final,
                "outcomes": dict(self.outcomes)}  # fmt: skip


def _channel_of(event_type: str) -> str | None:
    kind = EVENT_STATES.get(event_type, (None, None))[0]
    return kind if kind in RANKS else None


def channel_funnels(events: pl.DataFrame, messages: pl.DataFrame) -> dict[str, ChannelFunnel]:
    """Per channel, from the window's events and the common engine's one row per message."""
    typed = events.filter(pl.col("message_id").is_not_null()).with_columns(
        pl.col("event_type")
        .map_elements(_channel_of, return_dtype=pl.Utf8, skip_nulls=True)
        .alias("channel")
    )
    typed = typed.filter(pl.col("channel").is_not_null())
    by_message = typed.group_by("message_id").agg(
        pl.col("channel").first(), pl.col("event_type").unique().alias("types")
    )
    joined = messages.join(by_message, on="message_id", how="inner")
    out: dict[str, ChannelFunnel] = {}
    for channel in RANKS:
        rows = joined.filter(pl.col("channel") == channel)
        if rows.height == 0:
            continue
        outcomes = {}
        extra = [s for s in RANKS[channel] if s not in ("queued", "accepted", "sent", "delivered")]
        for state in extra:
            prefix = "message" if channel == "whatsapp" else channel
            n = int(rows["types"].list.contains(f"{prefix}.{state}").sum())
            outcomes[state] = n
        state = rows["state"]
        out[channel] = ChannelFunnel(
            channel=channel, messages=rows.height, sent=int(rows["sent_at"].is_not_null().sum()),
            delivered=int((state == "DELIVERED").sum()), failed=int((state == "FAILED").sum()),
            not_final=int((~state.is_in(["DELIVERED", "FAILED"]).fill_null(False)).sum()),
            outcomes=outcomes,
        )  # fmt: skip
    return out


def session_health(events: pl.DataFrame) -> dict[str, SessionHealth]:
    """The window's session events per session (dedupe by id, latest timestamp wins)."""
    rows = events.filter(pl.col("event_type").str.starts_with("session."))
    folded = []
    for r in rows.sort("arrival").iter_rows(named=True):
        at = r["occurred_at"] or r["received_at"]
        if r["conversation_id"] is None or at is None:
            continue
        data = {"session_id": r["conversation_id"], "status": r["status"],
                "reason": r["failure_reason"]}  # fmt: skip
        folded.append(SendApiEvent(r["event_id"], r["event_type"], at, data))
    return dict(fold_events(folded).sessions)


@dataclass(frozen=True)
class SendApiAuditFindings:
    """What the window and the API say: funnels, email rates, quota, sessions."""

    funnels: Mapping[str, ChannelFunnel]
    sessions: Mapping[str, SessionHealth]
    current_session: Any = None  # resources.WhatsAppSession, or the error reading it
    email_domain: Any = None  # resources.EmailDomain, or the error reading it
    usage: Any = None  # resources.Usage, or the error reading it
    headroom: float | None = None  # the last answer's X-RateLimit-Remaining / Limit

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, RunbookError):
                return {"error": value.message}
            return value.to_dict() if hasattr(value, "to_dict") else value

        return {"funnels": {c: f.to_dict() for c, f in self.funnels.items()},
                "sessions": {s: h.to_dict() for s, h in self.sessions.items()},
                "currentSession": plain(self.current_session),
                "emailDomain": plain(self.email_domain), "usage": plain(self.usage),
                "rateLimitHeadroom": self.headroom}  # fmt: skip


def _read(call: Any) -> Any:
    try:
        return call()
    except RunbookError as exc:
        return exc


def gather(run: Any) -> SendApiAuditFindings:
    """The findings for ``run`` (an ``AuditRun`` whose ``funnel()`` ran); reads the API only when
    the audit's context step got a client."""
    s = run.params.settings
    events = run.events if run.events is not None else pl.DataFrame()
    messages = run.table.messages if run.table is not None else pl.DataFrame()
    funnels = channel_funnels(events, messages) if events.height and messages.height else {}
    sessions = session_health(events) if events.height else {}
    client = run.client if run.token_error is None else None
    current = domain = usage = headroom = None
    if client is not None:
        usage = client.last_usage or _read(client.usage)
        limit = client.rate_limit
        headroom = getattr(limit, "headroom", None) if limit is not None else None
        if "whatsapp" in s.channels and s.whatsapp_session_id:
            current = _read(lambda: client.whatsapp_session(s.whatsapp_session_id))
        if "email" in s.channels and s.email_domain:
            found = _read(client.email_domains)
            domain = found if isinstance(found, RunbookError) else next(
                (d for d in found if d.domain == s.email_domain), None
            )  # fmt: skip
    return SendApiAuditFindings(funnels, sessions, current, domain, usage, headroom)


def _rate_check(check_id: str, title: str, funnel: ChannelFunnel | None, outcome: str,
                warn: float, fail: float, remedy: str) -> tuple[Check, str | None]:  # fmt: skip
    if funnel is None or not funnel.messages:
        return Check(check_id, title, "SKIP", "no email in the window"), None
    n, rate = funnel.outcomes.get(outcome, 0), funnel.rate(outcome) or 0.0
    status = "FAIL" if rate >= fail else "WARN" if rate >= warn else "PASS"
    summary = (f"{n} of {funnel.messages} email(s) {outcome} ({rate:.2%}; warn at {warn:.2%}, "
               f"fail at {fail:.2%})")  # fmt: skip
    return (Check(check_id, title, status, summary, evidence={outcome: n, "emails": funnel.messages},
                  remedy=remedy if status != "PASS" else None),
            summary if status != "PASS" else None)  # fmt: skip


def findings_checks(
    f: SendApiAuditFindings, params: Any
) -> tuple[list[Check], dict[str, list[str]]]:
    """The step's checks and its failure-domain signals."""
    s = params.settings
    checks: list[Check] = []
    signals: dict[str, list[str]] = {DOMAIN_SESSION: [], DOMAIN_EMAIL: [], DOMAIN_QUOTA: []}
    summary = " · ".join(
        f"{c} {x.messages} (delivered {x.delivered}, failed {x.failed}, not final {x.not_final})"
        for c, x in f.funnels.items()
    )
    checks.append(Check("sendapi.funnel", "Funnel per channel", "PASS" if f.funnels else "WARN",
                        summary or "no SendAPI message in the window",
                        evidence={c: x.to_dict() for c, x in f.funnels.items()}))  # fmt: skip
    # -- email reputation
    email = f.funnels.get("email")
    bounce, why = _rate_check(
        "sendapi.email.bounce_rate", "Email bounce rate", email, "bounced",
        s.bounce_rate_warn, s.bounce_rate_fail,
        "hard bounces are suppressed by SendAPI: clean the list (bounced addresses), check the "
        "sending domain's SPF/DKIM/DMARC, and slow down if the rate keeps rising.",
    )  # fmt: skip
    checks.append(bounce)
    if why and bounce.status == "FAIL":
        signals[DOMAIN_EMAIL].append(f"bounce rate: {why}")
    complaint, why = _rate_check(
        "sendapi.email.complaint_rate", "Email complaint rate", email, "complained",
        s.complaint_rate_warn, s.complaint_rate_fail,
        "recipients mark the mail as spam: send only to opted-in addresses, make unsubscribing "
        "easy; SendAPI suppresses complainers.",
    )  # fmt: skip
    checks.append(complaint)
    if why and complaint.status == "FAIL":
        signals[DOMAIN_EMAIL].append(f"complaint rate: {why}")
    if "email" in s.channels:
        d = f.email_domain
        if isinstance(d, RunbookError):
            checks.append(Check("sendapi.email.domain", f"Sending domain {s.email_domain}", "WARN",
                                f"could not read the email domains: {d.message}"))  # fmt: skip
        elif d is None and f.usage is not None:
            checks.append(Check("sendapi.email.domain", f"Sending domain {s.email_domain}", "FAIL",
                                f"{s.email_domain} is not among the account's email domains",
                                remedy="add it: POST /v1/email/domains, publish its records, verify."))  # fmt: skip
            signals[DOMAIN_EMAIL].append(f"{s.email_domain} is not an email domain of the account")
        elif d is not None:
            ok = bool(d.verified)
            checks.append(Check("sendapi.email.domain", f"Sending domain {s.email_domain}",
                                "PASS" if ok else "FAIL",
                                f"{s.email_domain} is {'verified' if ok else 'NOT verified'}",
                                remedy=None if ok else "publish the SPF/DKIM/DMARC records the API "
                                "lists, then POST /v1/email/domains/{id}/verify."))  # fmt: skip
            if not ok:
                signals[DOMAIN_EMAIL].append(
                    f"{s.email_domain} is not verified: sends from it are refused"
                )
    # -- quota and rate limit
    usage = f.usage
    if isinstance(usage, RunbookError):
        checks.append(Check("sendapi.quota", "Quota consumption (GET /v1/account/usage)", "WARN",
                            f"could not read the usage: {usage.message}"))  # fmt: skip
        if usage.status in (402, 429):
            signals[DOMAIN_QUOTA].append(f"GET /v1/account/usage answered {usage.status}")
    elif usage is not None:
        parts, worst = [], "PASS"
        for c in usage.channels:
            share = f"{c.share:.0%}" if c.share is not None else "n/a"
            parts.append(f"{c.name} {c.used if c.used is not None else '?'}/"
                         f"{c.quota if c.quota is not None else '∞'} ({share})")  # fmt: skip
            if c.exhausted:
                worst = "FAIL"
                signals[DOMAIN_QUOTA].append(
                    f"the {c.name} quota is exhausted ({c.used}/{c.quota})"
                )
            elif c.share is not None and c.share >= s.quota_warn_share and worst == "PASS":
                worst = "WARN"
        checks.append(Check("sendapi.quota", "Quota consumption (GET /v1/account/usage)", worst,
                            f"plan {usage.plan or 'unknown'}: " + (", ".join(parts) or "no quota listed"),
                            evidence=usage.to_dict(),
                            remedy="raise the plan or wait for the billing period to reset; sends "
                            "beyond a quota answer 402." if worst != "PASS" else None))  # fmt: skip
        if f.headroom is not None:
            low = f.headroom <= 0
            checks.append(Check("sendapi.rate_limit", "Rate-limit headroom",
                                "FAIL" if low else "WARN" if f.headroom < s.rate_limit_warn_share else "PASS",
                                f"{f.headroom:.0%} of the per-minute limit left at the last answer"))  # fmt: skip
            if low:
                signals[DOMAIN_QUOTA].append("no rate-limit headroom left: sends are answered 429")
    # -- WhatsApp session health
    if "whatsapp" in s.channels or f.sessions:
        rows = [h for h in f.sessions.values()]
        drops = sum(h.disconnections for h in rows)
        window = ", ".join(
            f"{h.session_id}: {h.disconnections} disconnection(s), last {h.status}"
            + (f" ({h.reason})" if h.reason else "") for h in rows
        ) or "no session event in the window"  # fmt: skip
        checks.append(Check("sendapi.session.events", "Session events in the window",
                            "WARN" if drops else "PASS", window,
                            evidence={h.session_id: h.to_dict() for h in rows},
                            remedy="keep the phone online and on a stable network; re-scan the QR "
                            "if it was logged out." if drops else None))  # fmt: skip
        if drops:
            signals[DOMAIN_SESSION].append(f"session.disconnected in the window: {window}")
        current = f.current_session
        sid = s.whatsapp_session_id
        if isinstance(current, RunbookError):
            checks.append(Check("sendapi.session.current", f"Session {sid} now", "WARN",
                                f"could not read the session: {current.message}"))  # fmt: skip
        elif current is not None:
            ok = current.status == "connected"
            checks.append(Check("sendapi.session.current", f"Session {sid} now", "PASS" if ok else "FAIL",
                                f"{sid} is {current.status}" + (f" on {current.phone_number}" if current.phone_number else ""),
                                evidence=current.to_dict(),
                                remedy=None if ok else "reconnect the phone (GET …/qr and scan); WhatsApp "
                                "sends answer 409 session_not_connected until then."))  # fmt: skip
            if not ok:
                signals[DOMAIN_SESSION].append(f"{sid} is {current.status} now")
    return checks, {d: e for d, e in signals.items() if e}


def audit_step(run: Any) -> StepResult:
    """The audit's SendAPI step over the run's window (see the module docstring)."""
    findings = gather(run)
    checks, signals = findings_checks(findings, run.params)
    funnel_rows = [x.row() for x in findings.funnels.values()]
    session_rows = [[h.session_id, h.status or "—", h.reason or "—", h.disconnections,
                     h.changed_at.isoformat() if h.changed_at else "—"]
                    for h in findings.sessions.values()]  # fmt: skip
    tables = [("By channel", ["channel", "messages", "sent", "delivered", "failed", "not final",
                              "outcomes"], funnel_rows)]  # fmt: skip
    if session_rows:
        tables.append(("WhatsApp sessions (window)", ["session", "last status", "reason",
                                                      "disconnections", "changed at"], session_rows))  # fmt: skip
    as_of = min(run.end, datetime.now(UTC))
    return StepResult(
        "sendapi_audit", "SendAPI: channels, email rates, quota, sessions", tuple(checks),
        resource=findings, tables=tuple(tables),
        details={"asOf": as_of.isoformat(), **findings.to_dict()},
        signals={d: tuple(e) for d, e in signals.items()},
    )  # fmt: skip
