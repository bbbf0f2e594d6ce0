"""Incident audit: isolate the failure domain, preserve the evidence, say it in the status format.

Read-only: it acquires a token and reads whoami and numbers, but never sends. For a window of
webhook events (``--since 2h`` or ``--from``/``--to``) it builds the funnel (accepted, sent,
delivered, failed kept apart), lists stuck messages, checks webhook health, and names the failure
domain the evidence points to:

    domain             evidence
    auth               the token endpoint refuses the credentials or cannot issue a token
    quota / rate limit a quota exhausted or no rate-limit headroom (the provider's audit step says)
    provider           API answers 5xx / 429 (or connections fail) above the threshold
    integration        webhooks arrive but the integration's receiver rejects them
    webhook delivery   whoami shows the account webhook FAILING / not configured, without rejections
    event pipeline     no webhook event at all in the window of an environment that expects traffic:
                       the receiver, its store or the event source is dead (never "healthy")
    WhatsApp session   the sending WhatsApp session is disconnected, or dropped in the window
    email domain       the sending domain is unverified, or bounces / complaints above the limit
    queue backlog      messages accepted and queued but not moving to sent, webhook healthy
    healthy            none of the above

The sender-side domains (quota, session, email domain) have no evidence of their own in the
common events: a provider's audit steps report it (``StepResult.signals``), weighed in this order.

Checked in that order: an auth failure explains everything after it; a receiver that rejects
deliveries is what makes the provider mark the webhook FAILING.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from ..core.checks import Check, ProviderSteps, StepReport
from ..core.errors import AuthError, ParameterError, RunbookError
from ..core.invocation import set_setting, setting
from ..core.lifecycle_table import LifecycleTable, audit_lifecycles
from ..core.parameters import RunbookParameters, load_parameters
from ..core.rendering import StatusBlock, badge, esc
from ..providers.base import get_provider
from ..reporting.index import previous_summary, reports_root_of
from ..reporting.plots import Plot, bar_chart, latency_histogram, stacked_counts
from ..reporting.snapshot import diff_snapshots
from ..sources import open_event_source
from .base import RecordedRun

__all__ = ["AuditRun", "DomainVerdict", "StatusBlock", "parse_window"]

DOMAINS = ("auth", "quota / rate limit", "provider", "integration", "webhook delivery",
           "event pipeline", "WhatsApp session", "email domain", "queue backlog")  # fmt: skip
# The runbook's own rehearsal traffic (webhook probe, drills) is marked by its ids; audits leave
# it out of the funnel and the rejection rate, and say how much they left out.
REHEARSAL_EVENT = r"^evt_(probe|drill)_"
REHEARSAL_MESSAGE = r"^msg_(probe_|drill)"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_window(
    since: str = "", window_from: str = "", window_to: str = "", *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """``since`` like ``2h`` / ``30m`` / ``1d`` back from now, or ISO ``window_from``/``window_to``.

    Raises:
        ParameterError: neither or both given, a bad duration or timestamp, or an empty window.
    """
    now = now or datetime.now(UTC)

    def instant(text: str, name: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ParameterError(
                f"{name} {text!r} is not an ISO-8601 time", remedy="e.g. 2026-11-23T08:00:00Z."
            ) from None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    if since and (window_from or window_to):
        raise ParameterError(
            f"give either {setting('since')} or {setting('from')}/{setting('to')}, not both"
        )
    if since:
        match = _DURATION.match(since)
        if not match:
            raise ParameterError(
                f"{setting('since')} {since!r} is not a duration", remedy="use e.g. 90m, 2h or 1d."
            )
        start, end = now - timedelta(**{_UNIT[match[2]]: float(match[1])}), now
    elif window_from:
        start = instant(window_from, setting("from"))
        end = instant(window_to, setting("to")) if window_to else now
    else:
        raise ParameterError(
            "an audit needs a window",
            remedy=set_setting(("since", "2h"), ("from", "2026-11-23T08:00:00Z")),
        )
    if start >= end:
        raise ParameterError(
            f"the window is empty: {start.isoformat()} is not before {end.isoformat()}"
        )
    return start, end


def _seconds(values: pl.Series) -> list[float]:
    return [v for v in (values.dt.total_microseconds() / 1e6).drop_nulls().to_list()]


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    s = pl.Series(values)
    return {
        p: round(float(s.quantile(q, "linear")), 2)
        for p, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }


@dataclass(frozen=True)
class DomainVerdict:
    """The failure domain the evidence points to (``healthy`` when none), with that evidence."""

    domain: str
    evidence: tuple[str, ...]
    also: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def healthy(self) -> bool:
        return self.domain == "healthy"

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "evidence": list(self.evidence),
                "also": [{"domain": d, "evidence": list(e)} for d, e in self.also]}  # fmt: skip

    def _repr_html_(self) -> str:
        label = "PASS" if self.healthy else "FAIL"
        parts = [
            f"<h3 style='margin:6px 0'>Failure domain: {badge(label, self.domain.upper())}</h3>"
        ]
        parts.append("<ul>" + "".join(f"<li>{esc(e)}</li>" for e in self.evidence) + "</ul>")
        for domain, evidence in self.also:
            parts.append(f"<p><b>Also observed ({esc(domain)}):</b> {esc('; '.join(evidence))}</p>")
        return "".join(parts)


class AuditRun(RecordedRun):
    """One incident or scheduled audit of an environment over a window of webhook events."""

    kind = "audit"

    def __init__(
        self,
        params: RunbookParameters,
        *,
        since: str = "",
        window_from: str = "",
        window_to: str = "",
        run_id: str = "",
        now: datetime | None = None,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.start, self.end = parse_window(since, window_from, window_to, now=now)
        self._open_recorder(params, run_id or None)
        self._environ = environ
        self.recorder.note(window={"from": self.start.isoformat(), "to": self.end.isoformat()})
        self.provider = get_provider(params.provider.kind)
        self.client: Any = None
        self.token_error: RunbookError | None = None
        self.provider_context: dict[
            str, Any
        ] = {}  # the provider's audit facts (API health, webhook)
        self.api_calls = 0
        self.events: pl.DataFrame | None = None
        self.table: LifecycleTable | None = None
        self.rejections: dict[str, int] = {}
        self.deliveries_total = 0
        self.funnel_counts: dict[str, int] = {}
        self.domain: DomainVerdict | None = None
        # evidence per failure domain from the provider's audit steps (StepResult.signals)
        self.provider_signals: dict[str, list[str]] = {}

    @classmethod
    def open(cls, params_file: str | Path, **kwargs: Any) -> AuditRun:
        return cls(load_parameters(params_file), **kwargs)

    @property
    def window(self) -> str:
        """The audited window as people read it (UTC)."""
        return f"{self.start:%Y-%m-%d %H:%M:%S}Z → {self.end:%Y-%m-%d %H:%M:%S}Z"

    def _about_detail(self) -> str:
        return f", window {self.window}"

    # -- 1. context -----------------------------------------------------------------------------
    def context(self) -> StepReport:
        """Token health, whoami and numbers (read-only), and drift since the last passing go-live."""
        title = self.provider.audit_context_title
        checks: list[Check] = []
        try:
            self.client = self.provider.build_client(self.params, environ=self._environ)
            info = self.client.acquire_token()
            # a credential without a token (Onyx's partner credential) says what it is itself
            checks.append(Check("audit.token", "Token acquisition", "PASS",
                                getattr(info, "summary", None)
                                or f"token issued (expires in {info.expires_in} s)"))  # fmt: skip
        except AuthError as exc:
            self.token_error = exc
            checks.append(Check("audit.token", "Token acquisition", "FAIL", str(exc).split(" Fix:")[0],
                                request_ids=(exc.request_id,) if exc.request_id else (), remedy=exc.remedy))  # fmt: skip
        except RunbookError as exc:
            self.token_error = exc
            checks.append(
                Check("audit.token", "Token acquisition", "FAIL", exc.message, remedy=exc.remedy)
            )
        snapshot = self.provider.context_snapshot(None, None)
        read = False
        if self.client is not None and self.token_error is None:
            result = self.provider.audit_context_step(self.client, self.params)
            checks += result.checks
            self.provider_context = dict(result.details)
            self.api_calls = self.provider_context.get("apiCalls", 0)
            self.recorder.note(api=self.provider_context.get("api"))
            read = bool(self.provider_context.get("identityRead"))
            snapshot = dict(result.snapshot or snapshot)
        self.recorder.note(snapshot=snapshot)
        reference = previous_summary(
            reports_root_of(self.recorder.report_dir), kind="go-live",
            environment=self.params.environment, before="9999", outcome="PASS",
        )  # fmt: skip
        drift = diff_snapshots(reference.snapshot, snapshot) if read and reference else []
        if reference is None or reference.path is None:
            checks.append(Check("audit.drift", "Drift since the last passing go-live", "SKIP",
                                "no passing go-live report of this environment to compare with"))  # fmt: skip
        else:
            checks.append(Check(
                "audit.drift", "Drift since the last passing go-live", "WARN" if drift else "PASS",
                f"{len(drift)} change(s) since {reference.path.name}" if drift else f"nothing changed since {reference.path.name}",
            ))  # fmt: skip
        rows = [tuple(map(str, r)) for r in drift]
        self.recorder.note(drift=rows)
        return self._record("context", title, checks,
                            tables=(("Drift", ["what", "before", "now"], rows),) if rows else ())  # fmt: skip

    # -- 2. funnel ------------------------------------------------------------------------------
    def funnel(self) -> StepReport:
        """Accepted, sent, delivered and failed for the window, by number and by hour; latencies."""
        source = open_event_source(self.params.event_source, provider=self.provider)
        loaded = source.load(since=self.start, until=self.end)
        rehearsal = loaded["message_id"].str.contains(REHEARSAL_MESSAGE).fill_null(False)
        self.events = loaded.filter(~rehearsal)
        self.recorder.note(rehearsalEventsExcluded=int(rehearsal.sum()))
        as_of = min(self.end, datetime.now(UTC))
        self.table = audit_lifecycles(
            self.events,
            as_of=as_of,
            stuck_after=timedelta(minutes=self.params.audit.stuck_after_minutes),
            model=self.provider.lifecycle,
        )
        m = self.table.messages
        counts = {
            "accepted (seen)": m.height,
            "queued": int(m["queued_at"].is_not_null().sum()),
            "sent": int(m["sent_at"].is_not_null().sum()),
            "delivered": int((m["state"] == "DELIVERED").sum()),
            "failed": int((m["state"] == "FAILED").sum()),
            "not final": int((~m["state"].is_in(["DELIVERED", "FAILED"]).fill_null(False)).sum()),
        }
        self.funnel_counts = counts
        final = counts["delivered"] + counts["failed"]
        rate = counts["delivered"] / final if final else None
        latencies = _latencies(m)
        to_sent = _percentiles(latencies["to sent"])
        to_delivered = _percentiles(latencies["to delivered"])
        by_number = (
            m.group_by("number_id")
            .agg(pl.len().alias("accepted"), (pl.col("state") == "DELIVERED").sum().alias("delivered"),
                 (pl.col("state") == "FAILED").sum().alias("failed"), pl.col("stuck").sum().alias("stuck"))
            .sort("accepted", descending=True)
        )  # fmt: skip
        by_hour = (
            m.with_columns(pl.col("first_event_at").dt.truncate("1h").alias("hour"))
            .group_by("hour")
            .agg(pl.len().alias("accepted"), (pl.col("state") == "DELIVERED").sum().alias("delivered"),
                 (pl.col("state") == "FAILED").sum().alias("failed"))
            .sort("hour")
        )  # fmt: skip
        reasons = (
            m.filter(pl.col("state") == "FAILED")
            .group_by("failure_code")
            .len()
            .sort("len", descending=True)
        )
        self.recorder.note(
            funnel=counts, deliveryRate=rate, timeToSent=to_sent, timeToDelivery=to_delivered,
            failureReasons={str(c): int(n) for c, n in reasons.iter_rows()},
        )  # fmt: skip
        warn = rate is not None and rate < self.params.audit.delivery_rate_warn
        unreadable = getattr(source, "rejected", [])  # export lines that were not envelopes
        checks = [
            Check("audit.source", "Event source", "WARN" if unreadable else "PASS",
                  f"{len(unreadable)} line(s) of the export could not be read and are not counted: "
                  + "; ".join(f"line {n}: {why}" for n, why in unreadable[:5])
                  if unreadable else f"{self.table.events_total:,} event(s) read from {source.name}",
                  remedy="fix or re-export those lines; the audit counts only what it could read."
                  if unreadable else None),
            Check("audit.funnel", "Funnel", "PASS" if m.height else "WARN",
                  " · ".join(f"{k} {v:,}" for k, v in counts.items())
                  if m.height else "no webhook event in the window"),
            Check("audit.delivery_rate", "Delivery rate", "WARN" if warn else "PASS",
                  f"{rate:.1%} of final messages delivered" if rate is not None else "no final message in the window"),
            Check("audit.latency", "Time to sent / delivered", "PASS",
                  f"to sent p50 {to_sent['p50']} s, p95 {to_sent['p95']} s, p99 {to_sent['p99']} s; "
                  f"to delivered p50 {to_delivered['p50']} s, p95 {to_delivered['p95']} s, p99 {to_delivered['p99']} s"),
        ]  # fmt: skip
        tables = (
            ("By sending number", list(by_number.columns), by_number.head(50).rows()),
            ("By hour (UTC)", list(by_hour.columns), [(str(r[0]), *r[1:]) for r in by_hour.rows()]),
            ("Failure reasons", ["failure code", "messages"], reasons.rows()),
        )  # fmt: skip
        return self._record("funnel", "Funnel", checks, tables=tables)

    def funnel_plot(self) -> Plot | str:
        if not self.funnel_counts:
            return "no funnel yet"
        labels = ["accepted (seen)", "queued", "sent", "delivered", "failed"]
        return bar_chart(labels, [self.funnel_counts[k] for k in labels],
                         title="Funnel: each state counted separately")  # fmt: skip

    def events_plot(self) -> Plot | str:
        """Webhook events per minute by type: a backlog or an outage shows as a gap or a divergence."""
        if self.events is None or self.events.height == 0:
            return "no events in the window"
        per_minute = (
            self.events.filter(pl.col("received_at").is_not_null())
            .with_columns(pl.col("received_at").dt.truncate("1m").alias("minute"))
            .group_by("minute", "event_type").len()
            .pivot(on="event_type", index="minute", values="len").sort("minute").fill_null(0)
        )  # fmt: skip
        series = {
            c.removeprefix("message."): per_minute[c].to_list()
            for c in per_minute.columns
            if c != "minute"
        }
        return stacked_counts(
            per_minute["minute"].to_list(), series, title="Webhook events per minute by type"
        )

    def latency_plot(self) -> Plot | str:
        if self.table is None or self.table.messages.height == 0:
            return "no messages in the window"
        m = self.table.messages
        return latency_histogram(
            {f"first event → {label.removeprefix('to ')}": values
             for label, values in _latencies(m).items()},
            title="Latency distribution", unit="seconds",
        )  # fmt: skip

    # -- 3. stuck -------------------------------------------------------------------------------
    def stuck(self, limit: int = 50) -> StepReport:
        """Messages accepted but not progressing past the threshold, with their ids."""
        assert self.table is not None, "run funnel() first"
        stuck = self.table.messages.filter("stuck").sort("last_event_at")
        rows = stuck.select(
            "message_id", "external_reference", "number_id", "state", "last_event_at"
        ).head(limit)
        self.recorder.note(stuck={"count": stuck.height, "messages": [
            {"messageId": r[0], "externalReference": r[1], "state": r[3]} for r in rows.rows()]})  # fmt: skip
        minutes = self.params.audit.stuck_after_minutes
        check = Check(
            "audit.stuck", "Stuck messages", "WARN" if stuck.height else "PASS",
            f"{stuck.height:,} message(s) not final and without an event for over {minutes:g} min"
            + (f" (first {limit} listed)" if stuck.height > limit else ""),
        )  # fmt: skip
        table = ("Stuck", ["messageId", "externalReference", self.provider.sender_label, "state", "last event"],
                 [tuple(map(str, r)) for r in rows.rows()])  # fmt: skip
        return self._record(
            "stuck", "Stuck messages", [check], tables=(table,) if stuck.height else ()
        )

    # -- 4. webhook health ----------------------------------------------------------------------
    def provider_steps(self) -> ProviderSteps | None:
        """The provider's own audit steps over the window (Onyx: blocks by reason code, consent
        changes, orders to escalate); None when it has none (Red Cloud), so the cell is empty."""
        results = self.provider.audit_steps(self)
        for r in results:
            for domain, evidence in r.signals.items():
                if domain not in DOMAINS:
                    raise ValueError(
                        f"{r.step} signals unknown failure domain {domain!r}; use one of {DOMAINS}"
                    )
                self.provider_signals.setdefault(domain, []).extend(evidence)
        reports = ProviderSteps(
            self._record(r.step, r.title, list(r.checks), tables=tuple(r.tables), details=dict(r.details))
            for r in results
        )  # fmt: skip
        return reports or None

    def webhook_health(self) -> StepReport:
        """Duplicates, out-of-order, gaps, rejections by the receiver, and delivery latency."""
        assert self.table is not None and self.events is not None, "run funnel() first"
        flags = self.table.flag_counts()
        source = open_event_source(self.params.event_source, provider=self.provider)
        if hasattr(source, "deliveries"):
            deliveries = source.deliveries(since=self.start, until=self.end)
            rehearsal = deliveries["webhook_id"].str.contains(REHEARSAL_EVENT).fill_null(False)
            self.recorder.note(rehearsalDeliveriesExcluded=int(rehearsal.sum()))
            deliveries = deliveries.filter(~rehearsal)
            self.deliveries_total = deliveries.height
            rejected = deliveries.filter(pl.col("outcome") == "rejected")
            self.rejections = {
                str(r): int(n) for r, n in rejected.group_by("reason").len().iter_rows()
            }
        latency = _percentiles(_seconds(self.events["received_at"] - self.events["occurred_at"]))
        rejected_total = sum(self.rejections.values())
        details = {
            "events": self.table.events_total,
            "duplicate deliveries (messages)": flags["duplicate_deliveries"],
            "out of order (messages)": flags["out_of_order"],
            "regressions refused (messages)": flags["regressions_refused"],
            "sequence gaps (messages)": flags["sequence_gaps"],
            "terminal conflicts (messages)": flags["terminal_conflict"],
            "missing message.queued (messages)": flags["missing_queued"],
            "unknown event types": self.table.unknown_event_types or "none",
            "receiver rejections": self.rejections or ("none" if self.deliveries_total else "not available from this source"),
            "delivery latency (occurred → received)": latency,
        }  # fmt: skip
        self.recorder.note(webhookHealth={k: v for k, v in details.items()})
        share = rejected_total / self.deliveries_total if self.deliveries_total else 0.0
        checks = [
            Check("audit.rejections", "Receiver rejections",
                  "FAIL" if share >= self.params.audit.rejection_rate_fail else "PASS",
                  f"{rejected_total} of {self.deliveries_total} delivery attempt(s) rejected ({share:.0%})"
                  + (": " + ", ".join(f"{k} {v}" for k, v in self.rejections.items()) if self.rejections else "")),
            Check("audit.conflicts", "Terminal conflicts", "WARN" if flags["terminal_conflict"] else "PASS",
                  f"{flags['terminal_conflict']} message(s) reported both delivered and failed"),
        ]  # fmt: skip
        return self._record("webhooks", "Webhook health", checks, details=details)

    # -- 5. failure domain ----------------------------------------------------------------------
    def failure_domain(self) -> DomainVerdict:
        """The domain the evidence points to, with that evidence; the rest as 'also observed'."""
        signals: dict[str, list[str]] = {d: [] for d in DOMAINS}
        a = self.params.audit
        if self.token_error is not None:
            signals["auth"].append(
                f"token acquisition failed: {str(self.token_error).split(' Fix:')[0]}"
            )
        if self.api_calls:
            bad = self.recorder.facts.get("api", {})
            if bad.get("errorRate", 0) >= a.api_error_rate_fail:
                signals["provider"].append(
                    f"{bad['errors']} of {bad['calls']} API answers were 5xx/429 or connection failures"
                )
        rejected = sum(self.rejections.values())
        if self.deliveries_total and rejected / self.deliveries_total >= a.rejection_rate_fail:
            reasons = ", ".join(f"{k} {v}" for k, v in self.rejections.items())
            signals["integration"].append(
                f"webhooks arrive but the receiver rejected {rejected} of {self.deliveries_total} ({reasons})"
            )
        webhook = self.provider_context.get("webhookStatus")
        if self.provider_context.get("webhookSignal"):
            signals["webhook delivery"].append(self.provider_context["webhookSignal"])
        events_seen = self.table.events_total if self.table is not None else 0
        if a.expect_traffic and not events_seen and not self.deliveries_total:
            signals["event pipeline"].append(
                f"no webhook event at all between {self.start:%Y-%m-%d %H:%M}Z and {self.end:%Y-%m-%d %H:%M}Z "
                f"(source {self.params.event_source.kind}): nothing reached the event store"
            )
        m = self.table.messages if self.table is not None else None
        if m is not None and m.height:
            queued_stuck = int((m["stuck"] & (m["state"] == "QUEUED")).sum())
            share = queued_stuck / m.height
            if share >= a.backlog_share_fail and webhook in (None, "CONFIGURED"):
                signals["queue backlog"].append(
                    f"{queued_stuck} of {m.height} message(s) ({share:.0%}) queued but not sent for over "
                    f"{a.stuck_after_minutes:g} min while webhooks are delivered"
                )
        for domain, evidence in self.provider_signals.items():
            signals[domain] += evidence
        found = [d for d in DOMAINS if signals[d]]
        if "integration" in found and "webhook delivery" in found:
            signals["integration"] += signals.pop("webhook delivery")  # rejections explain FAILING
            found.remove("webhook delivery")
        if not found:
            verdict = DomainVerdict(
                "healthy", ("token, API, webhook delivery and queue all within thresholds",)
            )
        else:
            verdict = DomainVerdict(found[0], tuple(signals[found[0]]),
                                    tuple((d, tuple(signals[d])) for d in found[1:]))  # fmt: skip
        self.domain = verdict
        self.recorder.note(failureDomain=verdict.to_dict())
        self._record("domain", "Failure domain", [Check(
            "audit.domain", "Failure domain", "PASS" if verdict.healthy else "FAIL",
            verdict.domain if verdict.healthy else f"{verdict.domain}: " + "; ".join(verdict.evidence),
            remedy=None
            if verdict.healthy
            else _REMEDY[verdict.domain].format(provider=self.provider.title),
        )])  # fmt: skip
        return verdict

    # -- 6. status ------------------------------------------------------------------------------
    def status_block(self, next_update_minutes: int = 30) -> StatusBlock:
        """Ready to paste: what broke, who is affected, delayed or lost, when the next update comes."""
        verdict = self.domain or self.failure_domain()
        counts = self.funnel_counts
        stuck = int(self.table.messages["stuck"].sum()) if self.table is not None else 0
        numbers = (
            sorted({str(n) for n in self.table.messages.filter("stuck")["number_id"].drop_nulls().to_list()})
            if self.table is not None else []
        )  # fmt: skip
        next_at = datetime.now(UTC) + timedelta(minutes=next_update_minutes)
        lines = {
            "Environment": f"{self.params.environment}, window {self.start:%Y-%m-%d %H:%M}–{self.end:%H:%M} UTC",
            "What broke": "nothing: the integration is healthy" if verdict.healthy
            else f"{verdict.domain} — {verdict.evidence[0]}",
            "Who is affected": f"{counts.get('accepted (seen)', 0):,} message(s) in the window; {stuck:,} stuck"
            + (f" on {', '.join(numbers[:5])}" if numbers else ""),
            "Delayed or lost": (f"delayed: {stuck:,} not final; failed (final): {counts.get('failed', 0):,}. "
                                "Nothing accepted is lost while the provider still holds it; webhooks are retried.")
            if not verdict.healthy or stuck else "neither",
            "Next update": f"{next_at:%H:%M} UTC",
        }  # fmt: skip
        block = StatusBlock(lines)
        self.recorder.note(status=block.to_dict())
        return block

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _latencies(messages: pl.DataFrame) -> dict[str, list[float]]:
    """Seconds from a message's earliest event to the first arrival of sent / of delivered.

    Never from ``queued``: a delivery that arrives before its queued event would make a negative
    latency. The earliest event bounds both from below, so no value is ever negative.
    """
    start = messages["first_event_at"]
    return {
        "to sent": _seconds(messages["sent_at"] - start),
        "to delivered": _seconds(messages["delivered_at"] - start),
    }


_REMEDY = {
    "auth": "check the client secret in the secret store and the token URL; rotate if revoked.",
    "provider": "check {provider}'s status page and open a ticket with the requestIds; sends retry with the same keys.",
    "integration": "the receiver rejects deliveries: check its signing secret (rotation?) and clock; "
    "fix, then ask {provider} to resend (events are retried with the same webhook-id).",
    "webhook delivery": "the endpoint is unreachable or failing: check DNS, TLS, the load balancer and 5xx logs.",
    "event pipeline": "check that the receiver runs and answers, that {provider}'s webhook points at it, "
    "and that event_source reads the store it writes (audit.expect_traffic: false for a quiet environment).",
    "quota / rate limit": "a quota is exhausted or the rate limit is reached: raise the plan or wait for "
    "the reset, and pace sends (honour Retry-After); nothing is sent meanwhile.",
    "WhatsApp session": "reconnect the session's phone (scan the QR again if logged out) and keep it "
    "online; WhatsApp sends are refused until it is connected.",
    "email domain": "verify the sending domain (publish the SPF, DKIM and DMARC records {provider} lists) "
    "and clean the list of bounced and complaining addresses.",
    "queue backlog": "messages wait in the provider's queue: open a ticket with the stuck messageIds.",
}
