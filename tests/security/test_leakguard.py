"""The leak guard: canary secrets through passing and failing runs never survive in an artifact."""

from __future__ import annotations

import ast
import base64
import html
import json
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import nbformat
import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.reporting.summary import Summary
from runbook_lib.security.leakguard import REDACTED, encodings, scan_and_redact
from runbook_lib.security.privacy import mask_phone
from tests.stack import ROOT, running_stack

notebook = pytest.mark.notebook

# Every character an encoder treats specially: quotes, backslash, markup, spaces, non-ASCII.
CANARY = "canary-s3cr\"et\\ <&> 'é ünï-7f3a"


def artifact_texts(report_dir: Path) -> dict[str, str]:
    """Every file the run left, as text (binary files decoded leniently)."""
    return {
        str(p.relative_to(report_dir)): p.read_bytes().decode("utf-8", errors="replace")
        for p in sorted(report_dir.rglob("*"))
        if p.is_file()
    }


def secret_forms(values: list[str]) -> list[str]:
    forms = []
    for value in values:
        forms += list(encodings(value).values())
    return forms


def assert_no_canary(report_dir: Path, values: list[str]) -> None:
    texts = artifact_texts(report_dir)
    assert {"report.ipynb", "report.html", "summary.json"} <= set(texts)
    for name, text in texts.items():
        for form in secret_forms(values):
            assert form not in text, f"{form[:6]}… found in {name}"
        assert str(ROOT) not in text, f"absolute project path left in {name}"


def stack_secrets(stack) -> list[str]:
    tokens = list(stack.sandbox.sandbox.state.tokens)
    basic = base64.b64encode(f"sbx_client_rehearsal:{stack.client_secret}".encode()).decode()
    return [stack.client_secret, stack.webhook_secret, basic, *tokens]


@notebook
def test_passing_run_with_debug_logging_leaves_no_secret_anywhere(tmp_path):
    with running_stack(tmp_path) as stack:
        run = run_go_live(
            stack.params(log_level="DEBUG"), reports_root=tmp_path / "reports", extra_env=stack.env
        )
        values = stack_secrets(stack)
    assert run.exit_code == 0, run.summary.error
    assert len(values) >= 4  # client secret, webhook secret, Basic form, at least one token
    assert (run.report_dir / "run.log").stat().st_size > 0
    assert_no_canary(run.report_dir, values)
    guard = run.summary.leak_guard
    assert guard["status"] == "CLEAN" and guard["secretsChecked"] >= 3


@notebook
def test_bad_credentials_fail_cleanly_without_the_secret(tmp_path):
    wrong = "canary-wrong-" + "7f3a9c21b4d6"
    with running_stack(tmp_path) as stack:
        env = {**stack.env, "REDCLOUD_CLIENT_SECRET": wrong}
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=env)
        values = [wrong, stack.client_secret, *stack_secrets(stack)]
    assert run.exit_code == 1
    token = next(c for c in run.summary.checks if c.check_id == "auth.token")
    assert token.status == "FAIL" and "invalid_client" in token.summary
    assert_no_canary(run.report_dir, values)
    assert quote(wrong, safe="") not in (run.report_dir / "run.log").read_text()


@notebook
def test_token_endpoint_5xx_fails_cleanly_without_the_secret(tmp_path):
    with running_stack(tmp_path) as stack:
        params = stack.params(fault_profile={"api": {"token": {"rate_5xx": 1.0}}, "seed": 1})
        run = run_go_live(params, reports_root=tmp_path / "reports", extra_env=stack.env)
        values = stack_secrets(stack)
    assert run.exit_code == 1
    token = next(c for c in run.summary.checks if c.check_id == "auth.token")
    assert token.status == "FAIL" and "5" in token.summary
    assert_no_canary(run.report_dir, values)


def custom_notebook(folder: Path, *extra_cells: str) -> Path:
    """go_live.ipynb cut after the token step, plus ``extra_cells``; RUNBOOK_NOTEBOOKS points here."""
    nb = nbformat.read(ROOT / "notebooks" / "go_live.ipynb", as_version=4)
    nb.cells = nb.cells[:7] + [nbformat.v4.new_code_cell(src) for src in extra_cells]
    folder.mkdir()
    nbformat.write(nb, folder / "go_live.ipynb")
    return folder


@notebook
def test_a_cell_raising_with_the_token_in_its_locals_is_caught_and_redacted(tmp_path, monkeypatch):
    # Verbose tracebacks print every local, the token included: the guard must catch that.
    cell = (
        "%xmode Verbose\n"
        "def use(token):\n"
        "    raise RuntimeError('provider rejected the request')\n"
        "use(golive.client.auth._token.reveal())"
    )
    monkeypatch.setenv("RUNBOOK_NOTEBOOKS", str(custom_notebook(tmp_path / "nb", cell)))
    with running_stack(tmp_path) as stack:
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
        values = stack_secrets(stack)
    assert run.exit_code == 4, run.summary.error
    assert run.summary.outcome == "SECRET_LEAK"
    assert any(h["secret"] == "access token" for h in run.summary.leak_guard["hits"])
    assert REDACTED in (run.report_dir / "report.ipynb").read_text()
    assert_no_canary(run.report_dir, values)


@notebook
def test_a_secret_planted_in_an_output_fails_the_run_with_exit_4(tmp_path, monkeypatch):
    cell = (
        "import base64, os\n"
        "secret = os.environ['REDCLOUD_CLIENT_SECRET']\n"
        "print('oops', base64.b64encode(secret.encode()).decode())"
    )
    monkeypatch.setenv("RUNBOOK_NOTEBOOKS", str(custom_notebook(tmp_path / "nb", cell)))
    with running_stack(tmp_path) as stack:
        run = run_go_live(stack.params(), reports_root=tmp_path / "reports", extra_env=stack.env)
        values = stack_secrets(stack)
    assert run.exit_code == 4
    hits = run.summary.leak_guard["hits"]
    assert any(
        h["secret"].startswith("client secret") and h["encoding"] == "base64" for h in hits
    ), hits
    assert "report.ipynb" in {h["artifact"] for h in hits}
    summary = Summary.load(run.report_dir)
    assert summary.exit_code == 4 and "redacted" in summary.error
    assert_no_canary(run.report_dir, values)


def test_scan_redacts_every_encoding_and_local_paths(tmp_path):
    secret = "s3cr3t/value+with=chars"
    basic = base64.b64encode(f"client:{secret}".encode()).decode()
    report = tmp_path / "r"
    report.mkdir()
    forms = encodings(secret)
    (report / "a.json").write_text(json.dumps({"v": list(forms.values()), "h": f"Basic {basic}"}))
    (report / "b.log").write_text(f"opened {ROOT}/state/x.sqlite\n")
    leak = scan_and_redact(
        report, secrets=[(secret, "client secret"), (basic, "basic")], project_root=ROOT
    )
    assert not leak.clean and leak.paths_rewritten >= 1
    assert {h.encoding for h in leak.hits} >= {"raw", "base64", "url-encoded"}
    text = (report / "a.json").read_text()
    assert all(form not in text for form in forms.values()) and basic not in text
    assert str(ROOT) not in (report / "b.log").read_text()
    assert scan_and_redact(report, secrets=[(secret, "client secret")], project_root=ROOT).clean


@notebook
def test_destinations_are_masked_by_default_and_shown_when_configured(tmp_path):
    with running_stack(tmp_path) as stack:
        masked = run_go_live(
            stack.params("a.yaml"), reports_root=tmp_path / "a", extra_env=stack.env
        )
        shown = run_go_live(
            stack.params("b.yaml", privacy={"mask_destinations": False}),
            reports_root=tmp_path / "b",
            extra_env=stack.env,
        )
    number = "+15005550001"
    for run in (masked, shown):
        assert run.exit_code == 0, run.summary.error
    masked_text = "".join(artifact_texts(masked.report_dir).values())
    assert number not in masked_text and mask_phone(number) in masked_text
    assert number in (shown.report_dir / "report.html").read_text()
    shutil.rmtree(tmp_path / "a")


# -- every encoding, every artifact kind ------------------------------------------------------
def canary_notebook() -> nbformat.NotebookNode:
    """A notebook whose outputs hold the canary the ways a kernel writes it."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source="print(secret)")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text=f"{CANARY}\n{json.dumps(CANARY)}\n"),
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": f"<b title='{html.escape(CANARY)}'>{html.escape(CANARY, False)}</b>",
                "text/plain": repr(CANARY),
            },
        ),
        nbformat.v4.new_output(
            "error", ename="RuntimeError", evalue=repr(CANARY), traceback=[ascii(CANARY)]
        ),
    ]
    nb.cells = [cell]
    return nb


def write_ipynb(folder: Path) -> Path:
    path = folder / "report.ipynb"
    nbformat.write(canary_notebook(), path)  # HTML escaped, then JSON-escaped by nbformat
    return path


def write_html(folder: Path) -> Path:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(canary_notebook())  # nbconvert's own escaping
    path = folder / "report.html"
    path.write_text(body + f"<p>{html.escape(CANARY)}</p>", encoding="utf-8")
    return path


def write_json(folder: Path) -> Path:
    path = folder / "summary.json"
    doc = {"a": CANARY, "nested": json.dumps({"b": CANARY}), "html": html.escape(CANARY)}
    text = (
        json.dumps(doc) + json.dumps(doc, ensure_ascii=False) + json.dumps(doc).replace("/", "\\/")
    )
    path.write_text(text, encoding="utf-8")
    return path


def write_log(folder: Path) -> Path:
    path = folder / "run.log"
    url = httpx.URL("https://api.example/x", params={"q": CANARY})  # httpx's own safe set
    lines = [
        {"message": f"GET {url}"},
        {"message": f"form client_secret={quote_plus(CANARY)}"},
        {"message": f"path /{quote(CANARY, safe='').lower()}"},
        {"message": f"basic {base64.urlsafe_b64encode(CANARY.encode()).decode().rstrip('=')}"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("write", [write_ipynb, write_html, write_json, write_log])
def test_a_hostile_canary_is_found_in_every_artifact_kind_and_redacted(tmp_path, write):
    path = write(tmp_path)
    report = scan_and_redact(tmp_path, secrets=[(CANARY, "canary")], project_root=ROOT)
    assert not report.clean and {h.artifact for h in report.hits} == {path.name}
    text = path.read_text(encoding="utf-8")
    assert REDACTED in text
    assert "s3cr" not in text and "7f3a" not in text, text  # no residue of any form
    for form in encodings(CANARY).values():
        assert form not in text
    assert scan_and_redact(tmp_path, secrets=[(CANARY, "canary")], project_root=ROOT).clean


def test_every_named_form_is_found_alone(tmp_path):
    forms = encodings(CANARY)
    assert {"json-escaped", "html-escaped", "url-encoded+", "base64"} <= set(forms)
    assert {"html-escaped, in JSON", "json-escaped (UTF-8)"} <= set(forms)
    (tmp_path / "forms.txt").write_text("".join(f"<{f}>\n" for f in forms.values()))
    report = scan_and_redact(tmp_path, secrets=[(CANARY, "canary")], project_root=ROOT)
    assert sum(h.count for h in report.hits) == len(forms)
    assert (tmp_path / "forms.txt").read_text() == f"<{REDACTED}>\n" * len(forms)


# -- local paths ------------------------------------------------------------------------------
def test_local_paths_are_rewritten_only_where_a_whole_path_starts(tmp_path):
    tmp = str(Path(tempfile.gettempdir()).resolve())
    kept = [f"https://host{tmp}/x", f"{tmp}foo/x", f"/srv{tmp}/x", f"./x{tmp}", f"{tmp}.bak/x"]
    rewritten = [f"{tmp}/x", f'"{tmp}/y"', f"({tmp})", f"--dir={tmp}/z", f"host:{tmp}", f"{tmp}."]
    report = tmp_path.parent / f"report-{tmp_path.name}"
    report.mkdir()
    (report / "run.log").write_text("\n".join(kept + rewritten))
    result = scan_and_redact(report, secrets=[], project_root=Path("/nonexistent-project"))
    lines = (report / "run.log").read_text().splitlines()
    assert lines[: len(kept)] == kept
    assert lines[len(kept) :] == ["<tmp>/x", '"<tmp>/y"', "(<tmp>)", "--dir=<tmp>/z", "host:<tmp>",
                                  "<tmp>."]  # fmt: skip
    assert result.paths_rewritten == len(rewritten)
    shutil.rmtree(report)


def test_a_path_placeholder_in_html_is_text_not_an_element(tmp_path):
    """In report.html the rewritten path reads as <tmp>/x on screen, never as a <tmp> tag."""
    from tests.htmlcheck import parse

    tmp = str(Path(tempfile.gettempdir()).resolve())
    report = tmp_path.parent / f"report-{tmp_path.name}"
    report.mkdir()
    (report / "report.html").write_text(f"<html><body><p>stored at {tmp}/x</p></body></html>")
    scan_and_redact(report, secrets=[], project_root=Path("/nonexistent-project"))
    page = parse((report / "report.html").read_text())
    assert "tmp" not in [tag for tag, _ in page.tags]
    assert "stored at <tmp>/x" in "".join(page.text)
    shutil.rmtree(report)


# -- the registry and the channel -------------------------------------------------------------
def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (relative names kept)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.add("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_secrets_and_the_leak_guard_do_not_import_each_other():
    secrets = imported_modules(ROOT / "runbook_lib" / "security" / "secrets.py")
    channel = imported_modules(ROOT / "runbook_lib" / "security" / "secret_channel.py")
    assert not {m for m in secrets | channel if "leakguard" in m}, secrets | channel
    assert not {m for m in channel if m.startswith(".")}  # the shared wire depends on nothing


@notebook
def test_every_secret_is_guarded_from_parameter_load_in_every_encoding(tmp_path, monkeypatch):
    """A secret whose step is off (an unused password_env) and the new element of a rotation
    list, planted JSON-, HTML-, repr- and percent-encoded in every artifact: exit 4, all gone."""
    cells = (
        "import html, json, os\nfrom urllib.parse import quote, quote_plus\n"
        "canary = os.environ['CANARY_DB_PASSWORD']\n"
        "new = os.environ['REDCLOUD_WEBHOOK_SECRET'].split()[-1]",
        "print(json.dumps({'p': canary}), new)",
        "from IPython.display import HTML, display\n"
        "display(HTML('<b>' + html.escape(canary) + '</b>'))",
        "with open(os.path.join(os.environ['RUNBOOK_REPORT_DIR'], 'run.log'), 'a') as log:\n"
        "    log.write(json.dumps({'message': 'GET /x?p=' + quote_plus(canary).lower()}) + '\\n')",
        "raise RuntimeError(f'rejected {canary!r} and {new}')",
    )
    monkeypatch.setenv("RUNBOOK_NOTEBOOKS", str(custom_notebook(tmp_path / "nb", *cells)))
    with running_stack(tmp_path) as stack:
        event_source = {
            "kind": "receiver_sqlite",
            "path": str(stack.receiver.store_path),
            "password_env": "CANARY_DB_PASSWORD",  # unused by this kind: registered all the same
        }
        params = stack.params(event_source=event_source)
        rotation = f"{generate_webhook_secret()} {stack.webhook_secret}"
        env = {**stack.env, "CANARY_DB_PASSWORD": CANARY, "REDCLOUD_WEBHOOK_SECRET": rotation}
        run = run_go_live(params, reports_root=tmp_path / "reports", extra_env=env)
        values = [CANARY, stack.webhook_secret, *stack_secrets(stack)]
    assert run.exit_code == 4, run.summary.error
    hits = run.summary.leak_guard["hits"]
    assert {"report.ipynb", "report.html", "summary.json", "run.log"} <= {
        h["artifact"] for h in hits
    }
    labels = {h["secret"] for h in hits}
    assert "password (CANARY_DB_PASSWORD)" in labels
    assert "signing secret (REDCLOUD_WEBHOOK_SECRET), element 2 of 2" in labels
    assert_no_canary(run.report_dir, values)
    for text in artifact_texts(run.report_dir).values():
        assert "s3cr" not in text


def test_the_secret_channel_loses_no_value_when_writers_race_the_reader():
    """Many kernel-side writes in quick succession (and from threads) all reach the CLI."""
    import threading

    from runbook_lib.security.leakguard import SecretChannel
    from runbook_lib.security.secret_channel import encode_line, write_fifo

    values = [f"channel-secret-{i:04d}-value" for i in range(400)]
    with SecretChannel() as channel:

        def write(chunk: list[str]) -> None:
            for value in chunk:
                assert write_fifo(channel.path, encode_line(value, "race"))

        threads = [threading.Thread(target=write, args=(values[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(v for v, _ in channel.received) == sorted(values)
