"""What go-live and the drills share: a run against one provider, recorded and closed in the ledger.

Steps never raise for an operational failure: they record a FAIL check carrying the requestId and
the fix, and the checks that depend on it are BLOCKED by it (:data:`PRECONDITIONS`, resolved by
:func:`runbook_lib.core.checks.resolve_blocked`), so the report always reaches its verdict and
names the root cause first. Only a bug ends a run early (the CLI then exits 2 and says where).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.checks import Check, StepReport, Verdict
from ..core.errors import RunbookError
from ..core.ledger import SendLedger
from ..core.locks import LOCK_NOTE_ENV
from ..core.parameters import RunbookParameters, load_parameters
from ..core.sends import ReplayWindow, idempotency_key_for
from ..providers.base import WEBHOOK_ENDPOINT_CHECK, Provider, get_provider
from ..reporting.progress import report_progress
from .base import RecordedRun

if TYPE_CHECKING:
    from ..sources import EventSource

__all__ = ["PRECONDITIONS", "DrillsRun", "ProviderRun", "fail_from", "not_asked", "skip"]

WEBHOOK_ENDPOINT = WEBHOOK_ENDPOINT_CHECK
# What each check needs, declared once (check-id pattern → the check ids it requires): a check
# whose requirement FAILed or is BLOCKED is BLOCKED by the root cause, never a FAIL of its own.
# A provider adds its own checks' needs (``Provider.preconditions``); the steps a provider
# defines (identity, senders, its own go-live steps) all need the token.
PRECONDITIONS: dict[str, tuple[str, ...]] = {
    "auth.*": ("preflight.secret",),
    "send.accepted*": ("preflight.*", "auth.token"),
    "send.replay": ("send.accepted",),
    "lifecycle.*": ("send.accepted", WEBHOOK_ENDPOINT),
    "support.trace": ("send.accepted", "lifecycle.queued", WEBHOOK_ENDPOINT),
    "drill.*": ("auth.token",),
    "drill.webhook_*": (WEBHOOK_ENDPOINT,),
    "probe.*": (WEBHOOK_ENDPOINT,),
}
PROVIDER_STEP_REQUIRES = ("auth.token",)


def fail_from(check_id: str, title: str, exc: RunbookError, **evidence: Any) -> Check:
    """A FAIL check from an error: its message, its requestId, its fix."""
    return Check(
        check_id,
        title,
        "FAIL",
        str(exc.message),
        evidence={**evidence, "error": exc.to_dict()},
        request_ids=(exc.request_id,) if exc.request_id else (),
        remedy=exc.remedy or None,
    )


def skip(check_id: str, title: str, reason: str, *, requires: tuple[str, ...] = ()) -> Check:
    """Not run, for ``reason``; BLOCKED instead when what it ``requires`` (or what the run's
    preconditions say it needs) failed."""
    return Check(check_id, title, "SKIP", reason, requires=requires)


def not_asked(check_id: str, title: str, reason: str) -> Check:
    """Not run because the parameter file does not ask for it: a SKIP that nothing blocks."""
    return Check(check_id, title, "SKIP", reason, asked=False)


class ProviderRun(RecordedRun):
    """A run that talks to the provider: preflight, token, drills, and a verdict in the ledger."""

    kind = "provider-run"

    def __init__(
        self,
        params: RunbookParameters,
        *,
        run_id: str = "",
        environ: Mapping[str, str] | None = None,
        progress: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider: Provider = get_provider(params.provider.kind)
        self._environ = dict(os.environ if environ is None else environ)
        self._sleep = sleep
        self._progress = progress or report_progress
        self.ledger = SendLedger(params.ledger_path)
        started = self.ledger.start_run(params.environment, self.kind, run_id or None)
        self._open_recorder(params, started, baseUrl=params.provider.base_url)
        # polars (behind the sources) loads here, after the package set its allocator up
        from ..sources import PollingSource

        self.events: EventSource = PollingSource(params.event_source, provider=self.provider)
        self.client: Any = None
        self.token_ok = False
        self.clock_skew: float | None = None
        self.window = ReplayWindow(seconds=params.provider.idempotency_window_hours * 3600)
        self.preconditions = {
            pattern: tuple(dict.fromkeys([*PRECONDITIONS.get(pattern, ()), *needs]))
            for pattern, needs in [*PRECONDITIONS.items(), *self.provider.preconditions.items()]
        }

    @classmethod
    def open(cls, params_file: str | Path, *, run_id: str = "", **kwargs: Any) -> ProviderRun:
        """Load and validate the parameter file, then open the run (no network yet)."""
        return cls(load_parameters(params_file), run_id=run_id, **kwargs)

    def _run_age_seconds(self) -> float | None:
        return self.ledger.age_seconds(self.ledger.run_started_at(self.run_id))

    def _outside_window(self) -> bool:
        """This run began longer ago than the provider remembers keys: it must send nothing."""
        return not self.window.holds(self._run_age_seconds())

    @property
    def is_sandbox(self) -> bool:
        """Said by the parameter file (``provider.sandbox``), never by probing the target."""
        return self.params.provider.sandbox

    # -- preflight -----------------------------------------------------------------------------
    def preflight(self) -> StepReport:
        """Parameters, the secret's presence (never its value), the clock, where evidence goes."""
        p = self.params
        send = self.provider.send_settings(p)
        checks = [
            Check(
                "preflight.parameters",
                "Parameter file valid",
                "PASS",
                f"environment {p.environment}: {self._expected_senders()}, "
                f"test send {send.send_from} → {self.show_phone(send.to)}"
                if send is not None
                else f"environment {p.environment}: {self.provider.title} settings valid",
                evidence={"environment": p.environment, "baseUrl": p.provider.base_url},
            )
        ]
        try:
            self.client = self.provider.build_client(p, environ=self._environ, sleep=self._sleep)
            checks.append(
                Check(
                    "preflight.secret",
                    "Client secret available",
                    "PASS",
                    f"read from ${self.provider.credential_env(p)} (value not shown)",
                )
            )
        except RunbookError as exc:
            checks.append(fail_from("preflight.secret", "Client secret available", exc))
        checks.append(self._clock_check())
        if p.fault_profile is not None:
            checks.append(self._apply_fault_profile())
        checks.append(self._event_source_check())
        checks.append(self._webhook_endpoint_check())
        lock_note = self._environ.get(
            LOCK_NOTE_ENV
        )  # set by the CLI when it took a dead run's lock
        return self._record(
            "preflight", "Preflight", checks, notes=(lock_note,) if lock_note else ()
        )

    def _expected_senders(self) -> str:
        p = self.params
        if p.numbers is not None:
            return f"{len(p.numbers)} expected number(s)"
        channels = getattr(p.settings, "channels", None) or ()
        return f"channel(s) {', '.join(channels)}"

    def _event_source_check(self) -> Check:
        title = "Webhook event store readable"
        source = self.params.event_source
        if source.kind == "sql":
            return Check("preflight.event_source", title, "PASS", f"sql table {source.table}")
        if source.path.exists():
            return Check(
                "preflight.event_source", title, "PASS", f"{source.kind} store {source.path.name}"
            )
        return Check(
            "preflight.event_source",
            title,
            "FAIL",
            f"no event store at {source.path.name}: lifecycle events cannot be confirmed.",
            remedy="start the receiver (runbook receiver --db ...) with the same path as "
            "event_source.path, and point the account webhook at it.",
        )

    def _webhook_endpoint_check(self) -> Check:
        """Whether the webhook endpoint answers at all: every check that waits for a webhook
        needs it (:data:`PRECONDITIONS`), so a receiver that is down is one root cause."""
        from .probe import endpoint_answers

        title = "Webhook endpoint answers"
        url = self.params.webhooks.endpoint_url
        if not url:
            return not_asked(WEBHOOK_ENDPOINT, title, "webhooks.endpoint_url is not set")
        answer, where = endpoint_answers(url)
        if answer.status is not None and answer.status not in (502, 503, 504):
            return Check(
                WEBHOOK_ENDPOINT, title, "PASS",
                f"{where} answered a GET with HTTP {answer.status}: it is up",
                evidence={"status": answer.status},
            )  # fmt: skip
        return Check(
            WEBHOOK_ENDPOINT, title, "FAIL",
            f"the webhook endpoint at {where} gave {answer.describe()}: no webhook can be "
            "received, so nothing that waits for one can be confirmed",
            evidence={"status": answer.status, "error": answer.error},
            remedy="start the receiver (runbook receiver --db ...) or correct "
            "webhooks.endpoint_url so it points at the running endpoint, then re-run.",
        )  # fmt: skip

    def _apply_fault_profile(self) -> Check:
        title = "Sandbox fault profile applied"
        if not self.is_sandbox:
            return Check("preflight.faults", title, "FAIL", "fault_profile is set but the provider is not the sandbox",
                         remedy="remove fault_profile from a parameter file for a real provider "
                         "(a sandbox says provider.sandbox: true).")  # fmt: skip
        with self.provider.sandbox().control(self.params.provider.base_url) as control:
            applied = control.set_faults(self.params.fault_profile or {})
        return Check(
            "preflight.faults", title, "PASS", "rehearsing under injected faults", evidence=applied
        )

    def _clock_check(self) -> Check:
        title = "Local clock agrees with the provider"
        if self.client is None:
            return skip("preflight.clock", title, "no client (secret missing)")
        server = self.client.server_clock()
        if server is None:
            return Check(
                "preflight.clock",
                title,
                "WARN",
                "the provider sent no Date header; clock skew not measured.",
                remedy="make sure this host runs NTP: webhook timestamps are checked to ±5 min.",
                requires=("auth.token",),  # no answer at all is no Date either: blocked by that
            )
        skew = time.time() - server
        self.clock_skew = skew
        evidence = {"skewSeconds": round(skew, 1)}
        limit_warn = self.params.clock_skew_warn_seconds
        limit_fail = self.params.clock_skew_fail_seconds
        status = "PASS" if abs(skew) < limit_warn else "WARN" if abs(skew) < limit_fail else "FAIL"
        return Check(
            "preflight.clock",
            title,
            status,
            f"skew {skew:+.1f} s (warn at {limit_warn:g} s, fail at {limit_fail:g} s)",
            evidence=evidence,
            remedy="sync this host's clock (NTP); receivers reject webhooks more than 5 min off."
            if status != "PASS"
            else None,
        )

    # -- token ---------------------------------------------------------------------------------
    def acquire_token(self) -> StepReport:
        """Client credentials grant against the runtime token URL; shows expiry and scope."""
        title = "Access token acquired"
        if self.client is None:
            return self._record(
                "token", "Token acquisition", [skip("auth.token", title, "no client secret")]
            )
        try:
            info = self.client.acquire_token()
        except RunbookError as exc:
            return self._record("token", "Token acquisition", [fail_from("auth.token", title, exc)])
        self.token_ok = True
        granted = set((info.scope or "").split())
        missing = [
            s
            for s in self.provider.required_scopes()
            if info.scope is not None and s not in granted
        ]
        checks = [
            Check(
                "auth.token",
                title,
                "PASS",
                # a credential without a token (SendAPI's API key, Onyx's partner credential)
                # says what it is itself (its ``summary``)
                getattr(info, "summary", None)
                or f"Bearer token, expires in {info.expires_in} s (refreshed 60 s early)",
                evidence=info.to_dict(),
                request_ids=(info.request_id,) if info.request_id else (),
            ),
            Check(
                "auth.scopes",
                "Token scopes cover the runbook",
                "FAIL" if missing else "PASS",
                f"missing {', '.join(missing)}"
                if missing
                else f"granted: {info.scope or '(not stated)'}",
                remedy="grant the API client the missing scopes in the console."
                if missing
                else None,
            ),
        ]
        return self._record("token", "Token acquisition", checks)

    # -- failure drills ------------------------------------------------------------------------
    def failure_drills(self) -> StepReport:
        """Provoke each failure path on purpose; see :mod:`runbook_lib.runbooks.drills`."""
        step, step_title = "drills", "Failure drills"
        if not self.params.drills.enabled:
            return self._record(
                step,
                step_title,
                [not_asked("drill.all", "Failure drills", "drills.enabled is false")],
            )
        if not self.token_ok or self.client is None:
            return self._record(step, step_title, [skip("drill.all", "Failure drills", "no token")])
        if self._outside_window():
            reason = (
                f"this run started beyond the provider's {self.window.describe()} idempotency "
                "window: its drill sends could not be replayed, so none is made (start a new run)"
            )
            return self._record(step, step_title, [skip("drill.all", "Failure drills", reason)])
        from .drills import DrillContext, client_factory, run_drills

        sandbox_url = self.params.provider.base_url if self.is_sandbox else None
        send = self.provider.send_settings(self.params)
        ctx = DrillContext(
            client=self.client,
            make_client=client_factory(self.client),
            # the controlled send's; a provider without one drills from its own section (params)
            send_from=send.send_from if send is not None else "",
            to=send.to if send is not None else "",
            endpoint_url=self.params.webhooks.endpoint_url,
            event_store=self.events,
            sandbox_url=sandbox_url,
            key_prefix=idempotency_key_for(self.params.environment, self.run_id, "drills"),
            outage_seconds=self.params.drills.outage_seconds,
            timeout=self.params.drills.timeout_seconds,
            sleep=self._sleep,
            progress=self._progress,
            provider=self.provider,
            params=self.params,
            webhook_secret=self._webhook_secret(),
            unmet=self.unmet_requirement,
            ledger=self.ledger,
            run_id=self.run_id,
            sender_check=self.provider.sender_check_id(self.params),
        )
        notes = (
            ()
            if sandbox_url
            else (
                "The provider is not the sandbox: drills that need provider-side control are skipped, not passed.",
            )
        )
        return self._record(step, step_title, run_drills(ctx), notes=notes)

    def _webhook_secret(self) -> str | None:
        """The newest signing secret of the endpoint, when the parameter file names one."""
        name = self.params.webhooks.signing_secret_env
        value = self._environ.get(name) if name else None
        return value.split()[-1] if value and value.split() else None

    # -- verdict -------------------------------------------------------------------------------
    def verdict(self) -> Verdict:
        """All checks in one table; closes the run in the ledger."""
        result = super().verdict()
        self.ledger.finish_run(self.run_id, result.outcome)
        return result

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.ledger.close()


class DrillsRun(ProviderRun):
    """The failure drills on their own (``runbook drills``): preflight, token, drills, verdict."""

    kind = "drills"
