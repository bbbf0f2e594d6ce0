"""The leak guard: canary secrets through passing and failing runs never survive in an artifact."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from runbook_lib.cli import run_go_live
from runbook_lib.reporting.summary import Summary
from runbook_lib.security.leakguard import REDACTED, encodings, scan_and_redact
from runbook_lib.security.privacy import mask_phone
from tests.stack import ROOT, running_stack

pytestmark = pytest.mark.notebook


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
