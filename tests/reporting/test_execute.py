"""After the leak guard: the HTML is rebuilt exactly when the scan changed what it shows."""

from __future__ import annotations

from datetime import UTC, datetime

import nbformat

from runbook_lib.reporting import execute
from runbook_lib.reporting.summary import Summary

SECRET = "sk_live_canary_9f8e7d6c5b4a"


def _report(folder, text):
    folder.mkdir()
    cell = nbformat.v4.new_code_cell("step()")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), folder / "report.ipynb")
    return Summary.from_evidence({}, kind="go-live", environment="sandbox", run_id="r1",
                                 started=datetime.now(UTC))  # fmt: skip


def _finish_counting_renders(tmp_path, monkeypatch, text):
    renders = []
    real = execute.write_html

    def counting(folder, summary):
        renders.append(summary.outcome)
        return real(folder, summary)

    monkeypatch.setattr(execute, "write_html", counting)
    folder = tmp_path / "report"
    summary = _report(folder, text)
    run = execute._finish(folder, summary, [(SECRET, "client secret")], tmp_path)
    return run, renders, (folder / "report.html").read_text()


def test_a_clean_scan_keeps_the_one_page_rendered(tmp_path, monkeypatch):
    run, renders, page = _finish_counting_renders(tmp_path, monkeypatch, "all good\n")
    assert run.summary.leak_guard["status"] == "CLEAN"
    assert len(renders) == 1
    assert "all good" in page and run.summary.outcome in page


def test_a_redacting_scan_rebuilds_the_page_from_what_it_left(tmp_path, monkeypatch):
    run, renders, page = _finish_counting_renders(tmp_path, monkeypatch, f"oops {SECRET}\n")
    assert run.exit_code == 4 and run.summary.outcome == "SECRET_LEAK"
    assert renders == [renders[0], "SECRET_LEAK"]  # the page says what the guard found
    assert "SECRET_LEAK" in page and SECRET not in page and "[REDACTED]" in page


def test_a_path_rewritten_in_the_notebook_rebuilds_the_page(tmp_path, monkeypatch):
    run, renders, page = _finish_counting_renders(tmp_path, monkeypatch, f"at {tmp_path}/x\n")
    assert run.summary.leak_guard["status"] == "CLEAN"
    assert len(renders) == 2
    assert str(tmp_path) not in page
