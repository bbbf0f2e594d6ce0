"""SendAPI's parameter section: typed, every declared channel complete, destinations allowlisted."""

from __future__ import annotations

import pytest
import yaml

from runbook_lib import ParameterError, load_parameters
from runbook_lib.providers.sendapi.settings import SendApiSettings
from tests.stack import ROOT, sample_parameters


def write(tmp_path, **changes):
    data = yaml.safe_load(sample_parameters("sendapi").read_text())
    data["sendapi"].update(changes)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_production_example_loads():
    params = load_parameters(ROOT / "parameters" / "sendapi-production.example.yaml")
    assert params.settings.channels == ["sms", "whatsapp", "email"]
    assert params.environment == "production" and not params.provider.sandbox


def test_the_sample_file_loads_without_numbers_or_an_oauth_client(tmp_path):
    params = load_parameters(sample_parameters("sendapi"))
    assert isinstance(params.settings, SendApiSettings)
    assert params.settings.channels == ["sms", "whatsapp"] and params.numbers is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"channels": ["sms", "fax"]}, "sendapi.channels[1]"),
        ({"channels": ["sms", "sms"]}, "channels lists a channel twice"),
        ({"sender_id": None}, "need sender_id"),
        ({"email_from": "ops@other.example"}, "is not on email_domain"),
        ({"whatsapp_number": "5550100"}, "is not an E.164 number"),
        ({"api_key_env": "sk_test_pasted-value"}, "is not an environment variable name"),
    ],
)
def test_bad_settings_are_named_with_their_place(tmp_path, changes, message):
    with pytest.raises(ParameterError) as info:
        load_parameters(write(tmp_path, **changes))
    assert message in str(info.value) and "sk_test_pasted-value" not in str(info.value)


def test_a_test_destination_off_the_allowlist_is_refused(tmp_path):
    data = yaml.safe_load(sample_parameters("sendapi").read_text())
    data["sendapi"]["test_send"]["sms"] = "+15005559999"
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ParameterError, match="destination \\+15005559999 is not in allowlist"):
        load_parameters(path)
