"""Parameter files: validated before any network call, every problem named with its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook_lib import ParameterError, load_parameters

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def sandbox() -> dict:
    return yaml.safe_load((ROOT / "parameters" / "sandbox.yaml").read_text())


@pytest.mark.parametrize(
    "name", ["sandbox.yaml", "staging.example.yaml", "production.example.yaml"]
)
def test_shipped_parameter_files_are_valid(name):
    params = load_parameters(ROOT / "parameters" / name)
    assert params.provider.client_secret_env.isupper()


def test_relative_paths_resolve_against_the_file(tmp_path):
    params = load_parameters(write(tmp_path, sandbox()))
    assert params.ledger_path == (tmp_path / "../state/send-ledger.sqlite").resolve()


def test_unknown_key_is_rejected_with_a_fix(tmp_path):
    data = sandbox()
    data["numbrs"] = []
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    assert "numbrs: unknown key" in str(info.value)


def test_a_secret_value_is_refused_and_the_env_var_way_explained(tmp_path):
    data = sandbox()
    data["provider"]["client_secret"] = "s3cr3t-value"
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    text = str(info.value)
    assert "provider.client_secret: unknown key" in text and "client_secret_env" in text
    assert "s3cr3t-value" not in text


def test_every_problem_is_listed_at_once(tmp_path):
    data = sandbox()
    data["test_send"]["to"] = "5550001"
    data["numbers"][0]["webhook_override"] = "sometimes"
    del data["provider"]["base_url"]
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    problems = info.value.problems
    assert any(p.startswith("provider.base_url: required") for p in problems)
    assert any(p.startswith("test_send.to:") and "E.164" in p and "Fix:" in p for p in problems)
    assert any(p.startswith("numbers[0].webhook_override:") for p in problems)


def test_destination_must_be_allowlisted(tmp_path):
    data = sandbox()
    data["test_send"]["to"] = "+15005559999"
    with pytest.raises(ParameterError, match="not in allowlist"):
        load_parameters(write(tmp_path, data))


def test_send_from_must_be_an_expected_number(tmp_path):
    data = sandbox()
    data["test_send"]["send_from"] = "num_other"
    with pytest.raises(ParameterError, match="send_from 'num_other' is not one of numbers"):
        load_parameters(write(tmp_path, data))


def test_broken_yaml_names_the_line(tmp_path):
    with pytest.raises(ParameterError, match="not valid YAML at line [23]"):
        load_parameters(write(tmp_path, "environment: x\nprovider: [a, b\nnumbers: 1\n"))


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(ParameterError, match="does not exist") as info:
        load_parameters(tmp_path / "nope.yaml")
    assert "parameters/sandbox.yaml" in str(info.value)


def test_a_file_without_provider_kind_is_red_cloud_and_not_a_sandbox(tmp_path):
    data = sandbox()
    del data["provider"]["kind"], data["provider"]["sandbox"]
    params = load_parameters(write(tmp_path, data))
    assert (params.provider.kind, params.provider.sandbox) == ("redcloud", False)


def test_an_unregistered_provider_kind_is_named_with_the_registered_ones(tmp_path):
    data = sandbox()
    data["provider"]["kind"] = "bluecloud"
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    assert "provider.kind: 'bluecloud' is not a registered provider (one of: redcloud)" in str(
        info.value
    )
