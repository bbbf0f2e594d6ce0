"""Dated audit reports: execute a notebook with papermill, then write summary JSON and HTML.

``reports/YYYY-MM-DD/<kind>-<env>-<HHMMSS>Z-<short id>/`` holds ``report.ipynb`` (executed),
``report.html`` (verdict first, code hidden) and ``summary.json`` (schema below). A failing cell
still leaves all three, saying which cell failed and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from .checks import Check, Verdict
from .leakguard import SecretChannel, scan_and_redact
from .recorder import EVIDENCE_FILE, REPORT_DIR_ENV, write_json_atomic
from .rendering import badge, esc
from .secrets import REGISTRY

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CHECK_FAILED",
    "EXIT_NOTEBOOK_ERROR",
    "EXIT_OK",
    "EXIT_SECRET_LEAK",
    "SUMMARY_SCHEMA_VERSION",
    "NotebookRun",
    "execute_report",
    "new_report_dir",
    "write_config_error_report",
]

SUMMARY_SCHEMA_VERSION = 1
EXIT_OK, EXIT_CHECK_FAILED, EXIT_NOTEBOOK_ERROR, EXIT_BAD_INPUT, EXIT_SECRET_LEAK = 0, 1, 2, 3, 4

NOTEBOOK_FILE, HTML_FILE, SUMMARY_FILE = "report.ipynb", "report.html", "summary.json"


def new_report_dir(root: Path, kind: str, environment: str, *, now: datetime | None = None) -> Path:
    """A fresh dated folder; the short id keeps two runs in the same second apart."""
    now = now or datetime.now(UTC)
    name = f"{kind}-{environment}-{now:%H%M%S}Z-{secrets.token_hex(3)}"
    folder = root / f"{now:%Y-%m-%d}" / name
    folder.mkdir(parents=True, exist_ok=False)
    return folder


@dataclass(frozen=True)
class NotebookRun:
    """How the papermill execution ended."""

    report_dir: Path
    summary: dict[str, Any]
    exit_code: int

    @property
    def outcome(self) -> str:
        return str(self.summary["outcome"])


def _relative(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path)


def _failed_cell(nb: nbformat.NotebookNode) -> dict[str, Any] | None:
    section = None
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and cell.source.lstrip().startswith("#"):
            section = cell.source.lstrip().splitlines()[0].lstrip("# ").strip()
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return {
                    "cellIndex": index,
                    "section": section,
                    "error": output.get("ename"),
                    "message": str(output.get("evalue", ""))[:500],
                }
    return None


def _summary(
    *,
    kind: str,
    environment: str,
    run_id: str | None,
    started: datetime,
    evidence: dict[str, Any],
    failed_cell: dict[str, Any] | None,
    error: str | None,
    exit_code: int,
    outcome: str,
) -> dict[str, Any]:
    checks = [c for step in evidence.get("steps", []) for c in step.get("checks", [])]
    facts = evidence.get("facts", {})
    return {
        "schemaVersion": SUMMARY_SCHEMA_VERSION,
        "kind": kind,
        "environment": environment,
        "runId": run_id or evidence.get("runId"),
        "startedAt": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "finishedAt": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "outcome": outcome,
        "exitCode": exit_code,
        "counts": {
            s: sum(1 for c in checks if c["status"] == s) for s in ("PASS", "FAIL", "WARN", "SKIP")
        },
        "checks": checks,
        "steps": [
            {"step": s["step"], "title": s["title"], "status": s["status"]}
            for s in evidence.get("steps", [])
        ],
        "messages": facts.get("messages", []),
        "requestIds": facts.get("requestIds", []),
        "gate": _gate_summary(facts.get("gate")),
        "snapshot": facts.get("snapshot"),
        "changes": facts.get("changes"),
        "failureDomain": facts.get("failureDomain"),
        "status": facts.get("status"),
        "window": facts.get("window"),
        "failedCell": failed_cell,
        "error": error,
        "artifacts": {"notebook": NOTEBOOK_FILE, "html": HTML_FILE, "summary": SUMMARY_FILE},
    }


def _gate_summary(gate: dict[str, Any] | None) -> dict[str, Any] | None:
    """The release gate in the summary: verdict, counts and what is still to do (not every row)."""
    if not gate:
        return None
    keep = ("verdict", "counts", "blockingUnmet", "missingAttestations", "expiredAttestations",
            "rehearsalAttestations")  # fmt: skip
    return {k: gate.get(k) for k in keep}


def _gate_html(gate: dict[str, Any] | None) -> str:
    if not gate:
        return ""
    lines = [f"<p style='margin:0 0 6px 0'>Release gate: {badge(gate['verdict'])} "
             + esc(", ".join(f"{n} {s}" for s, n in sorted(gate.get("counts", {}).items())))
             + "</p>"]  # fmt: skip
    if gate.get("blockingUnmet"):
        items = "".join(
            f"<li><b>{esc(i['id'])}</b> — {esc(i.get('todo') or '')}</li>"
            for i in gate["blockingUnmet"]
        )
        lines.append(
            f"<div><b>To do before go-live:</b><ul style='margin:2px 0'>{items}</ul></div>"
        )
    if gate.get("rehearsalAttestations"):
        lines.append(
            "<p style='margin:0 0 6px 0;color:#9a6700'><b>Rehearsal attestations</b> (not real "
            "confirmations, for the sandbox only): "
            + esc(", ".join(gate["rehearsalAttestations"]))
            + "</p>"
        )
    return "".join(lines)


def _verdict_html(summary: dict[str, Any]) -> str:
    checks = tuple(
        Check(
            c["id"],
            c["title"],
            c["status"],
            c["summary"],
            c.get("evidence", {}),
            tuple(c.get("requestIds", [])),
            c.get("remedy"),
        )
        for c in summary["checks"]
    )
    error = summary.get("error")
    failed = summary.get("failedCell")
    if failed:
        error = (
            f"cell {failed['cellIndex']} (section “{failed.get('section') or '?'}”) raised "
            f"{failed['error']}: {failed['message']}"
        )
    verdict = Verdict(
        run_id=summary.get("runId") or "-",
        environment=summary["environment"],
        checks=checks,
        error=error,
    )
    title = summary["kind"].capitalize()
    header = (
        f"<h2 style='margin:0 0 4px 0'>{esc(title)} report — {esc(summary['environment'])}</h2>"
        f"<p style='margin:0 0 8px 0;color:#57606a'>started {esc(summary['startedAt'])}, finished "
        f"{esc(summary['finishedAt'])}, exit code {esc(summary['exitCode'])}, outcome "
        f"<b>{esc(summary['outcome'])}</b></p>"
    ) + _gate_html(summary.get("gate"))
    return header + verdict._repr_html_() + "<hr>"


# The lab template minus everything it would fetch from a CDN (require.js, MathJax, Mermaid, the
# widgets renderer): a report opens offline and tells no third party that it was opened. Its CSS
# is inlined by the template and plots are data: URIs, so nothing else leaves the file.
_SELF_CONTAINED_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _html_exporter() -> Any:
    """nbconvert's HTML exporter for reports: code hidden, self-contained (no external host)."""
    import jinja2
    from nbconvert import HTMLExporter

    return HTMLExporter(
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        require_js_url="",
        mathjax_url="",
        extra_loaders=[jinja2.DictLoader({"runbook_report.html.j2": _SELF_CONTAINED_TEMPLATE})],
        template_file="runbook_report.html.j2",
    )


def _write_html(report_dir: Path, summary: dict[str, Any]) -> None:
    nb_path = report_dir / NOTEBOOK_FILE
    nb = nbformat.read(nb_path, as_version=4) if nb_path.exists() else nbformat.v4.new_notebook()
    top = nbformat.v4.new_code_cell(source="")
    top.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": _verdict_html(summary)})
    ]
    nb.cells.insert(0, top)
    body, _ = _html_exporter().from_notebook_node(
        nb, resources={"metadata": {"name": f"{summary['kind']} report"}}
    )
    (report_dir / HTML_FILE).write_text(body, encoding="utf-8")


def _outcome(
    evidence: dict[str, Any], failed_cell: dict[str, Any] | None, error: str | None
) -> tuple[str, int]:
    if failed_cell or error:
        return "ERROR", EXIT_NOTEBOOK_ERROR
    checks = [c for step in evidence.get("steps", []) for c in step.get("checks", [])]
    if not checks:
        return "ERROR", EXIT_NOTEBOOK_ERROR
    if any(c["status"] == "FAIL" for c in checks):
        return "FAIL", EXIT_CHECK_FAILED
    if not evidence.get("facts", {}).get("verdict"):
        return "ERROR", EXIT_NOTEBOOK_ERROR  # never reached its verdict cell
    return "PASS", EXIT_OK


class _PrivateKernels:
    """Where this run's kernel talks: a private folder of its own, never the working folder.

    jupyter_client puts IPC sockets next to a relative ``kernel-ipc`` name, i.e. in the current
    folder, picking the first free ``kernel-ipc-N``: runs started at the same moment from one
    folder pick the same sockets and talk to each other's kernels. Here the connection file and
    every socket live in a fresh ``mkdtemp`` folder (mode 0700), removed when the run ends, also
    when it is interrupted (SIGINT, or SIGTERM turned into an exit that unwinds); after a SIGKILL
    the kernel exits with its parent and nothing was ever created in the working folder.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="runbook-kernel-"))
        self.managers: list[Any] = []

    def manager_class(self) -> type:
        """A kernel manager on IPC sockets (local-only, no plaintext-TCP warning) in the folder."""
        from jupyter_client.manager import AsyncKernelManager
        from traitlets import CaselessStrEnum, Unicode

        managers, private_file = self.managers, str(self.folder / "kernel.json")

        class IpcKernelManager(AsyncKernelManager):
            transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")
            # the IPC socket paths derive from it: <folder>/kernel-ipc-<N>
            connection_file = Unicode(private_file)

            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                managers.append(self)

        return IpcKernelManager

    def close(self) -> None:
        """Stop a kernel an interruption left running, then remove the folder."""
        for manager in self.managers:
            process = getattr(getattr(manager, "provisioner", None), "process", None)
            if process is not None and process.poll() is None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    process.kill()
                    process.wait(5)
        shutil.rmtree(self.folder, ignore_errors=True)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def _stop_promptly(kernels: _PrivateKernels) -> Iterator[None]:
    """SIGTERM or SIGINT while a report runs: stop its kernel and remove its files at once.

    The main thread spends a run blocked in zmq waits that a signal delivered to another thread
    does not interrupt, so Python's handler alone could wait for the current cell to finish. A
    relay thread woken by ``signal.set_wakeup_fd`` stops the kernel and removes the private
    folder straight away, then interrupts the main thread, which unwinds through its ``finally``
    blocks: SIGTERM exits 143, SIGINT is the usual ``KeyboardInterrupt``, and a handler the caller
    had installed (a scheduler's) is called instead. A signal the caller ignores (SIG_IGN, e.g.
    SIGINT in a background job) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread; an embedding caller keeps its own
        return
    caught = [s for s in _STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    stopping, raised = threading.Event(), threading.Event()
    main_thread = threading.main_thread().ident or 0

    def handler(signum: int, frame: Any) -> None:
        if raised.is_set():
            return  # one unwinding is enough; the relay's nudge must not interrupt it
        raised.set()
        prior = previous.get(signum)
        if callable(prior) and prior is not signal.default_int_handler:
            prior(signum, frame)  # an embedding scheduler's own handler decides how to stop
            return
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)

    def relay() -> None:
        while (data := os.read(read_fd, 64)) and 0 not in data:  # b"\0": the run is over
            signum = next((b for b in data if b in caught), None)
            if signum is None or stopping.is_set():
                continue
            stopping.set()
            kernels.close()
            signal.pthread_kill(main_thread, signum)

    previous: dict[int, Any] = {}
    previous.update({s: signal.signal(s, handler) for s in caught})
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=relay, name="report-signal-relay", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        os.write(write_fd, b"\0")
        watcher.join(5)
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(read_fd)
        os.close(write_fd)


def execute_report(
    *,
    kind: str,
    notebook: Path,
    report_dir: Path,
    environment: str,
    parameters: dict[str, Any],
    cwd: Path,
    run_id: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> NotebookRun:
    """Run ``notebook`` under papermill into ``report_dir`` and write summary + HTML, always."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = datetime.now(UTC)
    t0 = time.monotonic()
    output = report_dir / NOTEBOOK_FILE
    channel = SecretChannel().__enter__()
    kernel_env = {REPORT_DIR_ENV: str(report_dir), **channel.env, **(extra_env or {})}
    saved_env = {k: os.environ.get(k) for k in kernel_env}
    os.environ.update(kernel_env)
    error: str | None = None
    kernels = _PrivateKernels()
    try:
        with _stop_promptly(kernels):
            papermill.execute_notebook(
                _relative(notebook, cwd),
                _relative(output, cwd),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name="python3",
                progress_bar=False,
                log_output=False,
                report_mode=False,
                kernel_manager_class=kernels.manager_class(),
            )
    except PapermillExecutionError:
        pass  # the failing cell is read back from the executed notebook below
    except Exception as exc:  # kernel died, notebook unreadable: still leave a report
        error = f"{type(exc).__name__}: {exc}"
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        channel.__exit__(None, None, None)
        kernels.close()
    evidence_path = report_dir / EVIDENCE_FILE
    evidence = json.loads(evidence_path.read_text()) if evidence_path.exists() else {}
    failed_cell = _failed_cell(nbformat.read(output, as_version=4)) if output.exists() else None
    outcome, exit_code = _outcome(evidence, failed_cell, error)
    summary = _summary(
        kind=kind,
        environment=environment,
        run_id=run_id,
        started=started,
        evidence=evidence,
        failed_cell=failed_cell,
        error=error,
        exit_code=exit_code,
        outcome=outcome,
    )
    summary["durationSeconds"] = round(time.monotonic() - t0, 2)
    return _finish(report_dir, summary, [*REGISTRY.items(), *channel.received], cwd)


def _finish(
    report_dir: Path, summary: dict[str, Any], secrets: list[tuple[str, str]], cwd: Path
) -> NotebookRun:
    """Write summary and HTML, then let the leak guard scan and redact every artifact."""
    write_json_atomic(report_dir / SUMMARY_FILE, summary)
    _write_html(report_dir, summary)
    leak = scan_and_redact(report_dir, secrets=secrets, project_root=cwd)
    summary = json.loads((report_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    summary["leakGuard"] = leak.to_dict()
    if not leak.clean:
        summary["outcome"], summary["exitCode"] = "SECRET_LEAK", EXIT_SECRET_LEAK
        summary["error"] = "a secret value was found in the artifacts (now redacted): " + "; ".join(
            f"{h.label} ({h.encoding}) in {h.artifact}" for h in leak.hits
        )
    write_json_atomic(report_dir / SUMMARY_FILE, summary)
    _write_html(report_dir, summary)
    scan_and_redact(report_dir, secrets=secrets, project_root=cwd)  # the rebuilt HTML, once more
    return NotebookRun(report_dir=report_dir, summary=summary, exit_code=summary["exitCode"])


def write_config_error_report(
    report_dir: Path, *, kind: str, environment: str, message: str
) -> NotebookRun:
    """Bad input found before execution: a summary and HTML that say what to fix (exit 3)."""
    now = datetime.now(UTC)
    summary = _summary(
        kind=kind,
        environment=environment,
        run_id=None,
        started=now,
        evidence={},
        failed_cell=None,
        error=message,
        exit_code=EXIT_BAD_INPUT,
        outcome="BAD_INPUT",
    )
    return _finish(report_dir, summary, REGISTRY.items(), Path.cwd())
