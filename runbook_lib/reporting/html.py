"""The HTML report: the executed notebook with code hidden, the verdict and the gate on top.

Built from the typed :class:`~runbook_lib.reporting.summary.Summary` (its checks are ``Check``
objects already; nothing is rebuilt from dicts here). Everything that came from outside is
escaped where it is rendered.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from ..core.rendering import StatusBlock, badge, esc
from .notebook_format import load_nbformat
from .summary import HTML_FILE, NOTEBOOK_FILE, Summary

__all__ = ["verdict_html", "warm_html_exporter", "write_html"]


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


def _status_html(summary: Summary) -> str:
    """An audit's paste-ready status next to its verdict, and how much rehearsal traffic it left out."""
    parts = [StatusBlock(summary.status)._repr_html_()] if summary.status else []
    left_out = summary.rehearsal_excluded
    if left_out is not None:
        events, deliveries = left_out.get("events", 0), left_out.get("deliveries", 0)
        parts.append(
            "<p style='margin:0 0 8px 0;color:#57606a'>The runbook's own drill and probe traffic is "
            f"left out of the funnel, the latencies and the plots: {events:,} event(s)"
            + (
                f", and {deliveries:,} probe delivery attempt(s) from the webhook health figures"
                if deliveries
                else ""
            )
            + ".</p>"
        )
    return "".join(parts)


def verdict_html(summary: Summary) -> str:
    """The report's header: kind, environment, times, outcome, the gate and the verdict table."""
    title = summary.kind.capitalize()
    header = (
        f"<h2 style='margin:0 0 4px 0'>{esc(title)} report — {esc(summary.environment)}</h2>"
        f"<p style='margin:0 0 8px 0;color:#57606a'>started {esc(summary.started_at)}, finished "
        f"{esc(summary.finished_at)}, exit code {esc(summary.exit_code)}, outcome "
        f"<b>{esc(summary.outcome)}</b></p>"
    ) + _gate_html(summary.gate)
    return header + summary.verdict()._repr_html_() + _status_html(summary) + "<hr>"


# The lab template minus everything it would fetch from a CDN (require.js, MathJax, Mermaid, the
# widgets renderer): a report opens offline and tells no third party that it was opened. Its CSS
# is inlined by the template and plots are data: URIs, so nothing else leaves the file.
_SELF_CONTAINED_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _new_html_exporter() -> Any:
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


# One exporter per process, used by one render at a time. Importing nbconvert, compiling its
# Jinja templates and the CSS selectors its post-processing runs take longer than rendering a
# report (about 1 s on this project's machines): they are paid once, not per HTML file.
_EXPORTER: list[Any] = []
_EXPORTER_LOCK = threading.Lock()


def _render(nb: Any, name: str) -> str:
    with _EXPORTER_LOCK:
        if not _EXPORTER:
            _EXPORTER.append(_new_html_exporter())
        body, _ = _EXPORTER[0].from_notebook_node(nb, resources={"metadata": {"name": name}})
    return str(body)


def warm_html_exporter() -> threading.Thread:
    """Get the exporter ready in a background thread, e.g. while a report's kernel runs.

    The thread imports nbconvert and renders an empty notebook, so the report's own renders find
    everything compiled; a render that comes first waits for it. A failure here is left to the
    report's render, which raises it where it is reported.
    """

    def warm() -> None:
        with contextlib.suppress(Exception):  # the report's own render raises it, reported
            _render(load_nbformat().v4.new_notebook(), "warm-up")

    thread = threading.Thread(target=warm, name="html-exporter-warm-up", daemon=True)
    thread.start()
    return thread


def write_html(report_dir: Path, summary: Summary) -> str:
    """``report.html`` next to the executed notebook (an empty notebook when there is none).

    Returns the report's header (:func:`verdict_html`) as it was written on top.
    """
    nb_path = report_dir / NOTEBOOK_FILE
    nbformat = load_nbformat()
    nb = nbformat.read(nb_path, as_version=4) if nb_path.exists() else nbformat.v4.new_notebook()
    header = verdict_html(summary)
    top = nbformat.v4.new_code_cell(source="")
    top.outputs = [nbformat.v4.new_output("display_data", data={"text/html": header})]
    nb.cells.insert(0, top)
    body = _render(nb, f"{summary.kind} report")
    (report_dir / HTML_FILE).write_text(body, encoding="utf-8")
    return header
