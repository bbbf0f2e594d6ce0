"""Serving: what counts as loopback, and how the server commands treat a non-loopback --host."""

from __future__ import annotations

import httpx
import pytest

from runbook_lib.cli import main
from runbook_lib.core import serving
from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.providers.base import get_provider
from runbook_lib.receiver import webhook_path


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("no-such-host.invalid", False),
    ],
)
def test_is_loopback(host, loopback):
    assert serving.is_loopback(host) is loopback


@pytest.fixture
def served(monkeypatch):
    """Stand in for serve_forever: record what would be served, serve nothing."""
    calls: list[dict] = []
    monkeypatch.setattr(
        serving, "serve_forever", lambda app, **kw: calls.append({"app": app, **kw})
    )
    return calls


def test_sandbox_refuses_a_non_loopback_host_without_allow_remote(served, capsys):
    code = main(["sandbox", "--host", "0.0.0.0", "--port", "0"])
    err = capsys.readouterr().err
    assert code == 3 and served == []
    (line,) = err.strip().splitlines()
    assert "--allow-remote" in line and "unauthenticated" in line and "0.0.0.0" in line


def test_sandbox_serves_a_non_loopback_host_with_allow_remote_and_says_so(served, capsys):
    code = main(["sandbox", "--host", "0.0.0.0", "--port", "0", "--allow-remote"])
    out = capsys.readouterr().out
    assert code == 0 and [c["host"] for c in served] == ["0.0.0.0"]
    assert "Note:" in out and "control plane" in out


def test_sandbox_on_loopback_needs_no_flag_and_prints_no_note(served, capsys):
    assert main(["sandbox", "--port", "0"]) == 0 and len(served) == 1
    assert "Note:" not in capsys.readouterr().out


def test_receiver_on_a_non_loopback_host_starts_and_says_so(served, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", generate_webhook_secret())
    code = main(["receiver", "--host", "0.0.0.0", "--port", "0", "--db", str(tmp_path / "e.db")])
    out = capsys.readouterr().out
    assert code == 0 and [c["host"] for c in served] == ["0.0.0.0"]
    assert "Note: listening on 0.0.0.0" in out


def test_receiver_on_loopback_prints_no_note(served, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", generate_webhook_secret())
    assert main(["receiver", "--port", "0", "--db", str(tmp_path / "e.db")]) == 0
    assert "Note:" not in capsys.readouterr().out


def test_receiver_max_body_bytes_reaches_the_app(served, monkeypatch, tmp_path):
    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", generate_webhook_secret())
    argv = ["receiver", "--port", "0", "--db", str(tmp_path / "e.db"), "--max-body-bytes", "1000"]
    assert main(argv) == 0
    with serving.running(served[0]["app"]) as server:
        url = server.url + webhook_path()
        assert httpx.post(url, content=b"x" * 1001).status_code == 413
        assert httpx.post(url, content=b"x" * 1000).status_code == 400  # unsigned, not too large


@pytest.mark.parametrize(
    "flag,value",
    [("--max-body-bytes", "0"), ("--body-timeout", "0"), ("--rejection-samples", "-1")],
)
def test_receiver_refuses_a_limit_out_of_range(served, capsys, monkeypatch, tmp_path, flag, value):
    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", generate_webhook_secret())
    code = main(["receiver", "--port", "0", "--db", str(tmp_path / "e.db"), flag, value])
    assert code == 3 and served == []
    assert flag.removeprefix("--").replace("-", "_") in capsys.readouterr().err


def test_runbook_receiver_serves_its_providers_path(served, capsys, monkeypatch, tmp_path):
    """`runbook receiver --provider sendapi` takes /webhooks/sendapi and says so."""
    monkeypatch.setenv(
        "REDCLOUD_WEBHOOK_SECRET", get_provider("sendapi").signature.generate_secret()
    )
    assert main(["receiver", "--port", "0", "--db", str(tmp_path / "e.db"),
                 "--provider", "sendapi"]) == 0  # fmt: skip
    assert "/webhooks/sendapi" in capsys.readouterr().out
    with serving.running(served[0]["app"]) as server:
        assert httpx.post(server.url + "/webhooks/sendapi", content=b"{}").status_code == 400
        refused = httpx.post(server.url + "/webhooks/redcloud", content=b"{}")
        assert refused.status_code == 404 and "/webhooks/sendapi" in refused.json()["detail"]
