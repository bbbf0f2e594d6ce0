"""The HTML report's exporter is built once per process and renders what a fresh one renders."""

from __future__ import annotations

import nbformat

from runbook_lib.reporting import html
from runbook_lib.reporting.summary import Summary


def _summary(tmp_path, **fields):
    data = {"kind": "go-live", "environment": "sandbox", "runId": "r1", "outcome": "PASS",
            "exitCode": 0, "checks": [], **fields}  # fmt: skip
    return Summary.from_dict(data)


def _notebook():
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.id = "fixed-id"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello <report>\n")]
    title = nbformat.v4.new_markdown_cell("# Title")
    title.id = "fixed-title"  # cell ids are random, and the page carries them
    return nbformat.v4.new_notebook(cells=[title, cell])


def test_the_shared_exporter_renders_exactly_what_a_fresh_one_does():
    html.warm_html_exporter().join()
    for _ in range(2):  # the warmed-up exporter, used again
        shared = html._render(_notebook(), "go-live report")
        fresh, _ = html._new_html_exporter().from_notebook_node(
            _notebook(), resources={"metadata": {"name": "go-live report"}}
        )
        assert shared == fresh
    assert "hello &lt;report&gt;" in shared and "print(" not in shared  # code hidden, escaped


def test_reports_written_in_one_process_build_the_exporter_once(tmp_path, monkeypatch):
    built = []
    real = html._new_html_exporter

    def counting():
        built.append(1)
        return real()

    monkeypatch.setattr(html, "_new_html_exporter", counting)
    monkeypatch.setattr(html, "_EXPORTER", [])
    for name in ("a", "b", "c"):
        folder = tmp_path / name
        folder.mkdir()
        nbformat.write(_notebook(), folder / "report.ipynb")
        header = html.write_html(folder, _summary(tmp_path))
        page = (folder / "report.html").read_text()
        assert "Go-live report" in header and "hello &lt;report&gt;" in page
    assert len(built) == 1
