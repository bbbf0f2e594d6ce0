"""Parameter files: validated before any network call, every problem named with its fix."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Literal, get_args

import pytest
import yaml
from pydantic import BaseModel, Field

from runbook_lib import ParameterError, load_parameters
from runbook_lib.core.parameters import RunbookParameters, SettingsSection, secret_env_fields
from runbook_lib.core.signing import generate_webhook_secret
from runbook_lib.providers.base import provider_names
from runbook_lib.security.leakguard import scan_and_redact
from runbook_lib.security.secrets import REGISTRY

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
    registered = ", ".join(provider_names())  # every registered provider, sorted
    assert {"redcloud", "onyx", "sendapi"} <= set(provider_names())
    assert f"provider.kind: 'bluecloud' is not a registered provider (one of: {registered})" in str(
        info.value
    )


# -- *_env fields: found by walking the model, never echoed, registered at load ---------------
def env_field_paths(model: type[BaseModel] = RunbookParameters, prefix: str = "") -> list[str]:
    """Dotted paths of every ``*_env`` field of the parameter model, found by walking it."""
    paths = []
    for name, info in model.model_fields.items():
        if name.endswith("_env"):
            paths.append(prefix + name)
            continue
        for candidate in (info.annotation, *get_args(info.annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                paths += env_field_paths(candidate, f"{prefix}{name}.")
    return paths


def set_path(data: dict, path: str, value) -> None:
    *sections, key = path.split(".")
    for section in sections:
        data = data.setdefault(section, {})
    data[key] = value


def test_the_model_has_env_fields_in_several_sections():
    paths = env_field_paths()
    assert {"provider.client_secret_env", "webhooks.signing_secret_env"} <= set(paths)
    assert "event_source.password_env" in paths


def test_every_env_field_is_registered_at_load_even_if_its_step_is_off(tmp_path, monkeypatch):
    data = sandbox()
    data["probe"]["enabled"] = data["drills"]["enabled"] = False  # nothing reads them
    expected = {}
    for index, path in enumerate(env_field_paths()):
        name, value = f"RUNBOOK_TEST_SECRET_{index}", f"value-of-{path}-{index}"
        set_path(data, path, name)
        monkeypatch.setenv(name, value)
        expected[value] = name
    load_parameters(write(tmp_path, data))
    registered = dict(REGISTRY.items())
    for value, name in expected.items():
        assert value in registered and name in registered[value]


def test_each_element_of_a_rotation_list_is_registered(tmp_path, monkeypatch):
    old, new = generate_webhook_secret(), generate_webhook_secret()
    monkeypatch.setenv("REDCLOUD_WEBHOOK_SECRET", f"{old} {new}")
    load_parameters(write(tmp_path, sandbox()))
    values = {value for value, _ in REGISTRY.items()}
    assert {f"{old} {new}", old, new} <= values
    report = tmp_path / "report"
    report.mkdir()
    (report / "run.log").write_text(f"signed with {new}\n")  # the new one alone
    leak = scan_and_redact(report, project_root=tmp_path)
    assert [h.label for h in leak.hits] == [
        "signing secret (REDCLOUD_WEBHOOK_SECRET), element 2 of 2"
    ]
    assert new not in (report / "run.log").read_text()


PASTED = 'hunter2 is-my "secret" value'


@pytest.mark.parametrize("path", env_field_paths())
def test_an_env_field_holding_a_value_is_refused_without_echoing_it(tmp_path, path):
    data = sandbox()
    set_path(data, path, PASTED)
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    text = str(info.value)
    assert f"{path}: the value is not an environment variable name" in text and "Fix:" in text
    assert "hunter2" not in text and "secret\\" not in text
    # Pasted by mistake, so probably the secret: the leak guard knows it now.
    assert PASTED in {value for value, _ in REGISTRY.items()}


def test_url_errors_never_quote_the_value(tmp_path):
    data = sandbox()
    data["provider"]["base_url"] = "ftp://ops:hunter2-pw@api.example"
    data["webhooks"]["endpoint_url"] = "hunter2-token-in-a-url"
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    text = str(info.value)
    assert "provider.base_url: the value is not an http(s) URL" in text
    assert "webhooks.endpoint_url" in text and "hunter2" not in text


def test_invalid_sql_mapping_is_refused_at_load_in_one_line(tmp_path):
    data = sandbox()
    data["event_source"] = {
        "kind": "sql",
        "url": "postgresql://runbook@127.0.0.1:1/events",
        "table": "webhook_events",
        "columns": {"event_id": "evt_uuid", "event_type": "kind; DROP TABLE webhook_events"},
    }
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    text = str(info.value)
    assert "\n" not in text
    assert "invalid SQL column mapping" in text and "columns.event_type" in text
    assert "not a plain column name: use letters, digits and underscores" in text


# -- provider-dependent sections: Red Cloud's fields, a provider's own settings key -----------
def test_red_cloud_credentials_numbers_and_test_send_stay_required_with_the_same_texts(tmp_path):
    data = sandbox()
    del data["provider"]["kind"], data["provider"]["client_id"]
    del data["provider"]["client_secret_env"], data["numbers"], data["test_send"]
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    fix = "required but missing. Fix: add it (see parameters/sandbox.yaml)."
    for path in ("provider.client_id", "provider.client_secret_env", "numbers", "test_send"):
        assert f"{path}: {fix}" in info.value.problems


class KeySettings(SettingsSection):
    """A key-based provider's own section (as SendAPI's and Onyx's are)."""

    api_key_env: str
    channels: list[Literal["sms", "email"]] = Field(min_length=1)
    webhook_secret_env: str | None = None


@pytest.fixture
def keyed_provider(monkeypatch):
    """A registered provider without Red Cloud's OAuth client, with a settings section."""
    from runbook_lib.providers import base

    red = base.get_provider("redcloud")
    fake = SimpleNamespace(
        kind="keyed", settings_model=KeySettings, readiness_catalog=red.readiness_catalog
    )
    monkeypatch.setitem(base.REGISTRY, "keyed", "unused:PROVIDER")
    monkeypatch.setitem(base._LOADED, "keyed", fake)
    return fake


def keyed_file() -> dict:
    return {
        "environment": "keyed",
        "provider": {"kind": "keyed", "sandbox": True, "base_url": "http://127.0.0.1:9"},
        "keyed": {"api_key_env": "KEYED_API_KEY", "channels": ["sms"]},
    }


def test_a_keyed_provider_file_needs_no_numbers_test_send_or_oauth_client(tmp_path, keyed_provider):
    params = load_parameters(write(tmp_path, keyed_file()))
    assert isinstance(params.settings, KeySettings)
    assert params.settings.channels == ["sms"] and params.numbers is None
    assert params.provider.client_id is None and params.test_send is None


def test_red_cloud_has_no_settings_and_refuses_a_section_named_after_another_kind(
    tmp_path, keyed_provider
):
    assert load_parameters(write(tmp_path, sandbox())).settings is None
    for key in ("keyed", "redcloud", "settings"):
        data = sandbox()
        data[key] = {"api_key_env": "KEYED_API_KEY", "channels": ["sms"]}
        with pytest.raises(ParameterError, match=f"^.*{key}: unknown key"):
            load_parameters(write(tmp_path, data))


def test_a_settings_section_is_typed_strict_and_listed_with_the_other_problems(
    tmp_path, keyed_provider
):
    data = keyed_file()
    data["keyed"] = {"channels": ["fax"], "extra": 1}
    data["retry"] = {"max_attempts": 0}
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    problems = info.value.problems
    assert any(p.startswith("keyed.api_key_env: required but missing") for p in problems)
    assert any(p.startswith("keyed.channels[0]:") for p in problems)
    assert any(p.startswith("keyed.extra: unknown key") for p in problems)
    assert any(p.startswith("retry.max_attempts:") for p in problems)
    with pytest.raises(ParameterError, match="keyed.api_key_env: required but missing"):
        load_parameters(write(tmp_path, {**keyed_file(), "keyed": None}))


def test_settings_env_fields_are_refused_as_values_and_registered_at_load(
    tmp_path, keyed_provider, monkeypatch
):
    data = keyed_file()
    data["keyed"]["webhook_secret_env"] = PASTED
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, data))
    text = str(info.value)
    assert "keyed.webhook_secret_env: the value is not an environment variable name" in text
    assert "hunter2" not in text
    monkeypatch.setenv("KEYED_API_KEY", "sk_test_value-of-the-keyed-key")
    monkeypatch.setenv("KEYED_HOOK", "whsec_value-of-the-keyed-hook")
    data["keyed"]["webhook_secret_env"] = "KEYED_HOOK"
    params = load_parameters(write(tmp_path, data))
    fields = {path: name for path, _, name in secret_env_fields(params)}
    assert fields["settings.api_key_env"] == "KEYED_API_KEY"
    registered = dict(REGISTRY.items())
    assert "KEYED_API_KEY" in registered["sk_test_value-of-the-keyed-key"]
    assert "KEYED_HOOK" in registered["whsec_value-of-the-keyed-hook"]
