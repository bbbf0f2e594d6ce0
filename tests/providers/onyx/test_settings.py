"""The ``onyx:`` section of a parameter file: validated at load into ``params.settings``."""

from __future__ import annotations

import pytest
import yaml

from runbook_lib.core.errors import ParameterError
from runbook_lib.core.parameters import load_parameters
from runbook_lib.providers.onyx.settings import OnyxSettings
from tests.stack import sample_parameters


def _write(tmp_path, data):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _sample():
    return yaml.safe_load(sample_parameters("onyx").read_text())


def test_the_sample_section_loads_into_the_settings_model():
    params = load_parameters(sample_parameters("onyx"))
    assert isinstance(params.settings, OnyxSettings)
    assert params.settings.connectivity.enabled and params.numbers is None
    assert ("US", "messaging", "sandbox") in [
        (d.market, d.capability, d.environment) for d in params.settings.launch
    ]


def test_a_credential_value_where_its_variable_name_belongs_is_refused_without_echo(tmp_path):
    data = _sample()
    value = "onyx_sk_test_" + "x9" * 12
    data["onyx"]["preview_credential_env"] = value
    with pytest.raises(ParameterError) as info:
        load_parameters(_write(tmp_path, data))
    assert "onyx.preview_credential_env" in str(info.value)
    assert value not in str(info.value)


def test_an_unknown_key_in_the_section_is_named(tmp_path):
    data = _sample()
    data["onyx"]["scope"] = ["orders:write"]  # the key is `scopes`
    with pytest.raises(ParameterError) as info:
        load_parameters(_write(tmp_path, data))
    assert "onyx.scope" in str(info.value)


def test_a_launch_declaration_with_an_unknown_capability_is_named(tmp_path):
    data = _sample()
    data["onyx"]["launch"][0]["capability"] = "voice"
    with pytest.raises(ParameterError) as info:
        load_parameters(_write(tmp_path, data))
    assert "onyx.launch[0].capability" in str(info.value)


def test_the_generic_env_walker_covers_the_onyx_section(tmp_path):
    data = _sample()
    value = "s3cr3t+value/with=base64"
    data["onyx"]["production_credential_env"] = value
    with pytest.raises(ParameterError) as info:
        load_parameters(_write(tmp_path, data))
    assert "onyx.production_credential_env" in str(info.value) and value not in str(info.value)
