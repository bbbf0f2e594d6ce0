"""``runbook``: run the notebooks headlessly, and start the sandbox and the reference receiver.

Exit codes (for cron and schedulers): 0 every check passed; 1 a check failed (go-live NO-GO,
an audit found a failure domain, a trace found nothing); 2 the notebook errored (the report says
which cell); 3 bad parameters or usage; 4 a secret was found in an artifact (now redacted).
Everything the command prints passes the same redaction as the artifacts (cron mails it out).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .core.errors import ConfigurationError, RunbookError
from .core.invocation import NOTEBOOK_FOR, invoked_by_cli
from .providers.base import DEFAULT_PROVIDER, get_provider, provider_names
from .reporting.execute import (
    EXIT_BAD_INPUT,
    NotebookRun,
    execute_report,
    new_report_dir,
    write_config_error_report,
)
from .reporting.index import build_index
from .reporting.progress import ConsolePrinter
from .reporting.summary import failed_cell_name
from .security.leakguard import redacted_console
from .security.secrets import secret_from_env

if TYPE_CHECKING:
    from .core.parameters import RunbookParameters

__all__ = ["main"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EPILOG = """exit codes: 0 all checks passed, 1 a check failed (NO-GO, failure domain found),
2 the notebook errored, 3 bad parameters or usage, 4 a secret leaked into an artifact (redacted).
Reports go to reports/YYYY-MM-DD/<kind>-<env>-<HHMMSS>Z-<id>/; reports/index.html lists them."""


def notebooks_dir() -> Path:
    return Path(os.environ.get("RUNBOOK_NOTEBOOKS", PROJECT_ROOT / "notebooks"))


def _say(text: str) -> None:
    print(text, flush=True)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- go-live ----------------------------------------------------------------------------------
def _validate_for_run(params_path: Path) -> RunbookParameters:
    """Everything that can be checked before the notebook starts: the file and the secret's env."""
    from .core.parameters import load_parameters  # pydantic: only for commands that read a file

    params = load_parameters(params_path)
    provider = get_provider(params.provider.kind)
    secret_from_env(provider.credential_env(params), purpose=provider.credential_name)
    return params


def _print_run(run: NotebookRun) -> None:
    s = run.summary
    counts = s.counts
    _say(
        f"{s.kind} {s.environment}: {s.outcome} ({counts['PASS']} pass, "
        f"{counts['FAIL']} fail, {counts['BLOCKED']} blocked, {counts['WARN']} warn, "
        f"{counts['SKIP']} skip)"
    )
    roots = s.root_causes
    for root in roots:  # the root causes first; what they blocked is counted, not repeated
        check = root.check
        blocked = f" ({root.blocked} check(s) blocked by it)" if root.blocked else ""
        _say(f"  FAIL {check.title}: {check.summary}{blocked}")
        if check.remedy:
            _say(f"       fix: {check.remedy}")
    gate = s.gate
    if gate:
        rehearsal = len(gate.get("rehearsalAttestations") or [])
        _say(
            f"release gate: {gate['verdict']}"
            + (f" ({rehearsal} rehearsal attestation(s), sandbox only)" if rehearsal else "")
        )
        for item in gate.get("blockingUnmet") or []:
            _say(f"  TODO {item['id']}: {item['todo']}")
    if s.failed_cell:
        f = s.failed_cell
        _say(f"  notebook stopped in {failed_cell_name(f)}: {f['error']}: {f['message']}")
    if s.error:
        _say(f"  {s.error}")
    _say(f"report: {run.report_dir}")
    if roots:
        _say(s.verdict().headline())


def run_go_live(
    params_path: Path,
    *,
    reports_root: Path,
    run_id: str | None = None,
    new_run: bool = False,
    extra_env: dict[str, str] | None = None,
    kind: str = "go-live",
) -> NotebookRun:
    """Validate, lock the environment, pick the run id (resuming an unfinished run), execute.

    The environment's lock (``state/<env>.golive.lock``) is held for the whole run, go-live and
    drills alike, and released when it ends, also on error.
    """
    from .core.ledger import SendLedger
    from .core.locks import LOCK_NOTE_ENV, EnvironmentLock, lock_path_for

    environment = "unknown"
    try:
        if extra_env:
            os.environ.update(extra_env)
        with invoked_by_cli():  # its fixes name the CLI's flags
            params = _validate_for_run(params_path)
        environment = params.environment
        ledger = SendLedger(params.ledger_path)  # a bad ledger_path stops here, before the network
    except ConfigurationError as exc:
        return _bad_input_run(reports_root, kind, environment, exc)
    try:
        lock = EnvironmentLock.acquire(
            lock_path_for(params.ledger_path, environment),
            environment=environment,
            run_id=run_id or "",
            kind=kind,
        )
    except ConfigurationError as exc:
        ledger.close()
        return _bad_input_run(reports_root, kind, environment, exc)
    try:
        if lock.takeover_note:
            _say(lock.takeover_note)
        try:
            run_id = _choose_run_id(ledger, params, kind, run_id=run_id, new_run=new_run)
        finally:
            ledger.close()
        lock.record_run_id(run_id)
        kernel_env = dict(extra_env or {})
        if lock.takeover_note:
            kernel_env[LOCK_NOTE_ENV] = lock.takeover_note
        return _execute(
            kind, params_path, params.environment, reports_root=reports_root,
            parameters={"run_id": run_id}, run_id=run_id, extra_env=kernel_env or None,
            lock_taken_over=lock.taken_over,
        )  # fmt: skip
    finally:
        lock.release()


def _choose_run_id(
    ledger: Any, params: RunbookParameters, kind: str, *, run_id: str | None, new_run: bool
) -> str:
    """The given id, else the unfinished run of this environment (resumed), else a new id."""
    from .core.ledger import new_run_id

    if run_id or new_run:
        return run_id or new_run_id()
    unfinished = ledger.unfinished_run(params.environment, kind)
    if not unfinished:
        return new_run_id()
    window_hours = params.provider.idempotency_window_hours
    age = ledger.age_seconds(ledger.run_started_at(unfinished))
    if age is not None and age < window_hours * 3600:
        _say(
            f"Resuming unfinished run {unfinished} (its send keys are reused); --new-run starts over."
        )
    else:
        started = "at an unreadable time" if age is None else f"{age / 3600:.1f} h ago"
        _say(
            f"Resuming unfinished run {unfinished}, started {started}: beyond the provider's "
            f"{window_hours:g} h idempotency window it sends nothing (a recorded acceptance is "
            "reported, an unsent step fails); --new-run starts over with one new test message."
        )
    return unfinished


def _bad_input_run(
    reports_root: Path, kind: str, environment: str, error: ConfigurationError
) -> NotebookRun:
    """The report of a run refused before its notebook started (exit 3)."""
    folder = new_report_dir(reports_root, kind, environment)
    return write_config_error_report(folder, kind=kind, environment=environment, message=str(error))


def _execute(
    kind: str,
    params_path: Path,
    environment: str,
    *,
    reports_root: Path,
    parameters: dict[str, str],
    run_id: str | None = None,
    extra_env: dict[str, str] | None = None,
    lock_taken_over: dict[str, Any] | None = None,
) -> NotebookRun:
    """Execute the kind's notebook into a new dated report folder."""
    cwd = Path.cwd()
    return execute_report(
        kind=kind,
        notebook=notebooks_dir() / NOTEBOOK_FOR[kind],
        report_dir=new_report_dir(reports_root, kind, environment),
        environment=environment,
        parameters={"params_file": os.path.relpath(params_path.resolve(), cwd), **parameters},
        cwd=cwd,
        run_id=run_id,
        extra_env=extra_env,
        progress=ConsolePrinter(),  # each step and wait as it happens, not all at the end
        lock_taken_over=lock_taken_over,
    )


def _finish(run: NotebookRun, args: argparse.Namespace, command: str) -> int:
    """Refresh the reports index, print the outcome; the run's exit code."""
    build_index(Path(args.reports))
    if run.exit_code == EXIT_BAD_INPUT:
        _err(f"runbook {command}: {run.summary.error}")
        _say(f"report: {run.report_dir}")
        return run.exit_code
    _print_run(run)
    return run.exit_code


def cmd_go_live(args: argparse.Namespace) -> int:
    run = run_go_live(
        Path(args.params),
        reports_root=Path(args.reports),
        run_id=args.run_id,
        new_run=args.new_run,
        kind=args.kind,
    )
    return _finish(run, args, args.kind)


# -- trace and audit (read-only) ------------------------------------------------------------
def run_read_only(
    kind: str,
    params_path: Path,
    *,
    reports_root: Path,
    notebook_parameters: dict[str, str],
    extra_env: dict[str, str] | None = None,
) -> NotebookRun:
    """Validate, then execute the trace or audit notebook into a dated report (nothing is sent)."""
    from .core.parameters import load_parameters

    environment = "unknown"
    try:
        if extra_env:
            os.environ.update(extra_env)
        with invoked_by_cli():  # its fixes name the CLI's flags
            params = load_parameters(params_path)
            environment = params.environment
            if kind == "audit":
                from .runbooks.audit import parse_window

                parse_window(
                    notebook_parameters.get("since", ""),
                    notebook_parameters.get("window_from", ""),
                    notebook_parameters.get("window_to", ""),
                )
    except ConfigurationError as exc:
        return _bad_input_run(reports_root, kind, environment, exc)
    return _execute(
        kind, params_path, params.environment, reports_root=reports_root,
        parameters=notebook_parameters, extra_env=extra_env,
    )  # fmt: skip


def cmd_trace(args: argparse.Namespace) -> int:
    run = run_read_only(
        "trace",
        Path(args.params),
        reports_root=Path(args.reports),
        notebook_parameters={
            "message_id": args.message_id or "",
            "external_reference": args.external_reference or "",
        },
    )
    return _finish(run, args, args.command)


def cmd_audit(args: argparse.Namespace) -> int:
    run = run_read_only(
        "audit",
        Path(args.params),
        reports_root=Path(args.reports),
        notebook_parameters={
            "since": args.since or "",
            "window_from": getattr(args, "from") or "",
            "window_to": args.to or "",
        },
    )
    domain = (run.summary.failure_domain or {}).get("domain")
    if domain:
        _say(f"failure domain: {domain}")
    return _finish(run, args, args.command)


# -- demo -------------------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """Sandbox + receiver on free loopback ports, go-live against them, then stop both."""
    from .core.parameters import parameters_from_dict
    from .core.sandbox_kit import REHEARSAL_RETRY_SCHEDULE
    from .receiver import run_receiver

    provider = get_provider(args.provider)
    kit = provider.sandbox()
    state = Path(args.state) / "demo"
    state.mkdir(parents=True, exist_ok=True)
    for stale in state.glob("*.sqlite*"):
        stale.unlink()
    client_secret = kit.new_credential("sbx-demo-")
    webhook_secret = provider.signature.generate_secret()
    sample = (
        "sandbox.yaml" if provider.kind == DEFAULT_PROVIDER else f"{provider.kind}-sandbox.yaml"
    )
    base = yaml.safe_load((PROJECT_ROOT / "parameters" / sample).read_text())
    with run_receiver(
        db_path=state / "receiver-events.sqlite", secrets=[webhook_secret], provider=provider
    ) as receiver:
        config = kit.config(
            client_secret=client_secret,
            webhook_url=receiver.webhook_url,
            webhook_secret=webhook_secret,
            lifecycle_delay=args.lifecycle_delay,
            webhook_retry_schedule=REHEARSAL_RETRY_SCHEDULE,
        )
        with kit.run(config) as sandbox:
            _say(f"sandbox  {sandbox.url}\nreceiver {receiver.webhook_url}")
            base["provider"]["base_url"] = getattr(sandbox, "base_url", sandbox.url)
            base["event_source"]["path"] = "receiver-events.sqlite"
            base["webhooks"]["endpoint_url"] = receiver.webhook_url
            section = base.get(provider.kind)  # a provider's own section may name its endpoint
            if isinstance(section, dict) and "webhook_url" in section:
                section["webhook_url"] = receiver.webhook_url
            base["ledger_path"] = "send-ledger.sqlite"
            params_path = state / "sandbox-demo.yaml"
            params_path.write_text(
                f"# Written by `runbook demo`: parameters/{sample} with this demo's ports.\n"
                + yaml.safe_dump(base, sort_keys=False)
            )
            params = parameters_from_dict(base)
            run = run_go_live(
                params_path,
                reports_root=Path(args.reports),
                new_run=True,
                extra_env={
                    provider.credential_env(params): client_secret,
                    params.webhooks.signing_secret_env: webhook_secret,
                },
            )
    build_index(Path(args.reports))
    _print_run(run)
    return run.exit_code


def cmd_probe(args: argparse.Namespace) -> int:
    from .runbooks.probe import StoreReader, run_probe

    secret = secret_from_env(args.secret_env, purpose="webhook signing secret")
    reader = StoreReader(Path(args.event_store)) if args.event_store else None
    result = run_probe(
        args.url, secret.reveal().split()[-1], reader=reader, burst=args.burst,
        progress=ConsolePrinter(),  # live: answers so far, time left
        provider=get_provider(args.provider),
    )  # fmt: skip
    for check in result.checks:
        _say(f"  {check.status:<4} {check.title}: {check.summary}")
        if check.status == "FAIL" and check.remedy:
            _say(f"       fix: {check.remedy}")
    failed = result.findings
    _say(f"probe: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")
    return 1 if failed else 0


def cmd_faults(args: argparse.Namespace) -> int:
    import json

    import httpx

    try:
        current = _faults_call(args)
    except (httpx.HTTPError, ValueError) as exc:  # nothing listening, or not the sandbox
        raise ConfigurationError(
            f"no sandbox control plane answered at {args.url}/_sandbox/faults "
            f"({type(exc).__name__}: {exc}).",
            code="sandbox_unreachable",
            remedy="start one with `runbook sandbox` (or `runbook demo`), or check --url.",
        ) from None
    _say(json.dumps(current, indent=2))
    return 0


def _load_fault_profile(path: str, kit: Any) -> dict[str, Any]:
    """A fault profile file, validated by the provider's profile type (before any request)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        kit.fault_profile.from_dict(data)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigurationError(
            f"fault profile {path}: {exc}",
            remedy="see the fault profile format in the README (Fault injection).",
        ) from None
    return data


def _faults_call(args: argparse.Namespace) -> Any:
    """Show, set or clear the faults; a bad profile is refused before any request."""
    kit = get_provider(args.provider).sandbox()
    data = _load_fault_profile(args.profile, kit) if args.profile else None
    with kit.control(args.url) as control:
        if args.clear:
            return control.clear_faults()
        if data is not None:
            return control.set_faults(data)
        return control.faults()


def cmd_reports(args: argparse.Namespace) -> int:
    """Rebuild the index (all runs), then print the runs of ``--env``/``--kind``."""
    from .reporting.index import read_index

    root = Path(args.reports)
    index = read_index(root)
    html = build_index(root, index)
    shown = index.filtered(environment=args.env, kind=args.kind)
    _say(shown.text())
    if args.env and args.env not in index.environments:
        _say(
            f"(no report of environment {args.env!r}; environments with reports: "
            f"{', '.join(index.environments) or 'none'})"
        )
    _say(f"index: {html}")
    return 0


# -- servers ----------------------------------------------------------------------------------
def cmd_sandbox(args: argparse.Namespace) -> int:
    from .core.serving import is_loopback, serve_forever

    provider = get_provider(args.provider)
    kit = provider.sandbox()
    remote = not is_loopback(args.host)
    if remote and not args.allow_remote:
        raise ConfigurationError(
            f"--host {args.host} is not a loopback address, and the sandbox's control plane and "
            "rehearsal credentials are unauthenticated by design: anyone who reaches it can "
            "change its faults and obtain tokens.",
            remedy="serve it on 127.0.0.1 (the default), or add --allow-remote on a network "
            "you trust.",
        )
    kwargs = {}
    if os.environ.get(args.client_secret_env):
        kwargs["client_secret"] = os.environ[args.client_secret_env]
    if os.environ.get(args.webhook_secret_env):
        kwargs["webhook_secret"] = os.environ[args.webhook_secret_env]
    config = kit.config(
        webhook_url=args.webhook_url, lifecycle_delay=args.lifecycle_delay, **kwargs
    )
    sandbox = kit.app(config)
    if args.faults:
        sandbox.set_faults(_load_fault_profile(args.faults, kit))
        _say(
            f"Rehearsing under the fault profile {args.faults} (runbook faults --clear removes it)."
        )
    if remote:
        _say(
            f"Note: --allow-remote: the sandbox listens on {args.host}; its control plane and "
            "rehearsal credentials are open to whoever reaches that address."
        )
    _say(
        f"{provider.title} sandbox on http://{args.host}:{args.port}"
        + (f" (client_id {config.client_id})" if hasattr(config, "client_id") else "")
        + "; "
        f"webhooks → {args.webhook_url or 'nowhere (set --webhook-url)'}. Ctrl-C stops it."
    )
    serve_forever(sandbox.app, host=args.host, port=args.port)
    return 0


def cmd_receiver(args: argparse.Namespace) -> int:
    from .core.serving import is_loopback, serve_forever
    from .receiver import ReceiverConfig, build_receiver

    limits = {
        name: getattr(args, name)
        for name in ("max_body_bytes", "body_timeout", "rejection_samples")
        if getattr(args, name) is not None  # unset: ReceiverConfig's default
    }
    config = ReceiverConfig(
        host=args.host,
        port=args.port,
        db_path=Path(args.db),
        secret_env=args.secret_env,
        provider=args.provider,
        **limits,
    )
    app = build_receiver(config)
    if not is_loopback(args.host):
        _say(
            f"Note: listening on {args.host}, not only on this machine: the receiver is meant to "
            f"face the internet; bodies over {config.max_body_bytes} bytes, oversized headers and "
            "unsigned requests are refused and counted."
        )
    _say(
        f"Webhook receiver on http://{args.host}:{args.port}{config.path}, storing to {args.db}. "
        "Ctrl-C stops it."
    )
    serve_forever(app, host=args.host, port=args.port)
    return 0


# -- parser -----------------------------------------------------------------------------------
def _provider_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--provider",
        default=DEFAULT_PROVIDER,
        choices=provider_names(),
        help=f"which provider's contract (default: {DEFAULT_PROVIDER})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook",
        description="Messaging-API go-live and incident runbooks (Red Cloud, SendAPI, Onyx): run "
        "the notebooks headlessly and "
        "leave dated reports; start the rehearsal sandbox and the reference webhook receiver.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "go-live",
        help="run the go-live notebook and write a dated report",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--params", required=True, help="parameter file, e.g. parameters/sandbox.yaml")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--run-id", help="re-run this run id (its sends are replayed, never repeated)"
    )
    group.add_argument(
        "--new-run", action="store_true", help="start a new run even if the last one did not finish"
    )
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.set_defaults(func=cmd_go_live, kind="go-live")

    p = sub.add_parser(
        "drills",
        help="run the failure drills notebook and write a dated report",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--params", required=True, help="parameter file, e.g. parameters/sandbox.yaml")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--run-id", help="re-run this run id")
    group.add_argument("--new-run", action="store_true", help="start a new run")
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.set_defaults(func=cmd_go_live, kind="drills")

    p = sub.add_parser(
        "trace",
        help="trace one send for support (by messageId or externalReference); dated report",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--params", required=True, help="parameter file, e.g. parameters/sandbox.yaml")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--message-id", help="the messageId from the 202 answer, e.g. msg_...")
    group.add_argument("--external-reference", help="the business reference sent with the message")
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser(
        "audit",
        help="incident / scheduled audit of a window: funnel, stuck, webhook health, failure domain",
        epilog=EPILOG + "\nexamples:\n  runbook audit --params parameters/staging.yaml --since 2h\n"
        "  runbook audit --params parameters/staging.yaml --from 2026-11-23T08:00Z --to 2026-11-23T10:00Z",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--params", required=True, help="parameter file, e.g. parameters/sandbox.yaml")
    p.add_argument("--since", help="window back from now: 90m, 2h, 1d")
    p.add_argument("--from", help="window start, ISO-8601 (UTC if no offset)")
    p.add_argument("--to", help="window end, ISO-8601 (default: now)")
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("probe", help="conformance-probe a webhook endpoint with signed test events")
    p.add_argument("--url", required=True, help="the integration's webhook endpoint URL")
    p.add_argument("--secret-env", required=True, help="env var holding the whsec_ signing secret")
    p.add_argument("--event-store", help="receiver SQLite store, to check side effects (optional)")
    p.add_argument(
        "--burst", type=int, default=20, help="valid events in the latency burst (default 20)"
    )
    _provider_option(p)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser(
        "demo", help="start sandbox + receiver on free ports, run go-live, stop them"
    )
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.add_argument("--state", default="state", help="folder for the demo's stores (default: state)")
    p.add_argument(
        "--lifecycle-delay",
        type=float,
        default=0.3,
        help="seconds between lifecycle events in the sandbox (default 0.3)",
    )
    _provider_option(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("faults", help="show, set or clear a running sandbox's fault profile")
    p.add_argument("--url", default="http://127.0.0.1:8765", help="sandbox base URL")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--profile", help="YAML fault profile to apply (api, webhooks, seed)")
    group.add_argument("--clear", action="store_true", help="remove every injected fault")
    _provider_option(p)
    p.set_defaults(func=cmd_faults)

    p = sub.add_parser(
        "reports", help="list the runs (newest first) and rebuild reports/index.html and index.json"
    )
    p.add_argument("--reports", default="reports", help="reports root folder (default: reports)")
    p.add_argument("--env", help="list only the runs of this environment, e.g. staging")
    p.add_argument("--kind", choices=sorted(NOTEBOOK_FOR), help="list only runs of this kind")
    p.set_defaults(func=cmd_reports)

    p = sub.add_parser(
        "sandbox", help="serve a provider's contract sandbox in the foreground (--provider)"
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument(
        "--webhook-url",
        help="account webhook URL: where `runbook receiver --provider <kind>` takes them, "
        "e.g. http://127.0.0.1:8766/webhooks/redcloud",
    )
    p.add_argument(
        "--lifecycle-delay", type=float, default=1.0, help="seconds between lifecycle events"
    )
    p.add_argument(
        "--client-secret-env",
        default="REDCLOUD_CLIENT_SECRET",
        help="env var whose value the sandbox accepts as the client secret "
        "(default: the documented rehearsal secret)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host that is not loopback (the control plane is unauthenticated)",
    )
    p.add_argument(
        "--webhook-secret-env",
        default="REDCLOUD_WEBHOOK_SECRET",
        help="env var holding the whsec_ signing secret (default: the rehearsal secret)",
    )
    p.add_argument(
        "--faults", metavar="PROFILE", help="start under this YAML fault profile (see README)"
    )
    _provider_option(p)
    p.set_defaults(func=cmd_sandbox)

    p = sub.add_parser("receiver", help="serve the reference webhook receiver in the foreground")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--db", default="state/receiver-events.sqlite", help="SQLite event store path")
    p.add_argument(
        "--secret-env",
        default="REDCLOUD_WEBHOOK_SECRET",
        help="env var holding the whsec_ signing secret(s), space-separated for rotation",
    )
    _provider_option(p)
    p.add_argument(
        "--max-body-bytes",
        type=int,
        help="refuse bodies larger than this with 413 (default 1048576, 1 MiB)",
    )
    p.add_argument(
        "--body-timeout",
        type=float,
        help="seconds a request body may take to arrive before 408 (default 10)",
    )
    p.add_argument(
        "--rejection-samples",
        type=int,
        help="refused deliveries whose details are kept; all are counted (default 1000)",
    )
    p.set_defaults(func=cmd_receiver)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``runbook`` command; what it prints passes the leak guard's redaction first."""
    with redacted_console(), invoked_by_cli():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for usage errors; ours is 3
        return EXIT_BAD_INPUT if exc.code not in (0, None) else 0
    try:
        return int(args.func(args))
    except ConfigurationError as exc:
        _err(f"runbook {args.command}: {exc}")
        return EXIT_BAD_INPUT
    except RunbookError as exc:
        _err(f"runbook {args.command}: {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
