"""DNS checks against a real authoritative DNS server serving good and broken records."""

from __future__ import annotations

import pytest

from runbook_lib.providers.sendapi.dns_checks import (
    ResolverSettings,
    check_domain_dns,
    check_record,
    parse_tags,
    qualify,
)
from runbook_lib.providers.sendapi.resources import DnsRecord, EmailDomain

from .dnsserver import serve_zone

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAx" + "Q" * 300 + "IDAQAB"
OTHER_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAy" + "Z" * 300 + "IDAQAB"
SPF = "v=spf1 include:spf.sendapi.co ~all"


def _split(text: str) -> str:
    """TXT character-strings are at most 255 bytes: split a long value the way zones do."""
    return " ".join(f'"{text[i : i + 200]}"' for i in range(0, len(text), 200))


ZONE = f"""
$TTL 60
$ORIGIN good.test.
@                  IN TXT "v=spf1 include:_spf.google.com include:spf.sendapi.co ~all"
@                  IN TXT "google-site-verification=abc"
sendapi._domainkey IN TXT {_split(f"v=DKIM1; k=rsa; p={KEY}")}
_dmarc             IN TXT "v=DMARC1; p=reject; rua=mailto:dmarc@good.test"
$ORIGIN missing.test.
@                  IN TXT "google-site-verification=abc"
$ORIGIN wrong.test.
@                  IN TXT "v=spf1 include:_spf.google.com ~all"
sendapi._domainkey IN TXT {_split(f"v=DKIM1; k=rsa; p={OTHER_KEY}")}
_dmarc             IN TXT "v=DMARC1; p=none"
$ORIGIN monitor.test.
@                  IN TXT "{SPF}"
sendapi._domainkey IN TXT {_split(f"v=DKIM1; k=rsa; p={KEY}")}
_dmarc             IN TXT "v=DMARC1; p=none; rua=mailto:d@monitor.test"
$ORIGIN double.test.
@                  IN TXT "{SPF}"
@                  IN TXT "v=spf1 -all"
_dmarc             IN TXT "v=DMARC1; p=reject"
_dmarc             IN TXT "v=DMARC1; p=none"
$ORIGIN cname.test.
@                  IN TXT "v=spf1 +all"
sendapi._domainkey IN CNAME dkim.sendapi.co.
_dmarc             IN TXT "v=DMARC1; p=quarantine"
"""


def domain(
    name: str, *, dmarc: str = "v=DMARC1; p=quarantine", relative: bool = False
) -> EmailDomain:
    """The records SendAPI returns for ``name`` (relative owner names when ``relative``)."""
    owner = (
        (lambda label: label or "@")
        if relative
        else (lambda label: f"{label}.{name}" if label else name)
    )
    return EmailDomain.from_wire({
        "id": f"dom_{name}", "domain": name, "verified": True,
        "records": {"spf": {"type": "TXT", "name": owner(""), "value": SPF},
                    "dkim": {"type": "TXT", "name": owner("sendapi._domainkey"), "value": f"v=DKIM1; k=rsa; p={KEY}"},
                    "dmarc": {"type": "TXT", "name": owner("_dmarc"), "value": dmarc}},
    })  # fmt: skip


@pytest.fixture(scope="module")
def dns_port():
    with serve_zone(ZONE) as port:
        yield port


@pytest.fixture
def resolver(dns_port):
    return ResolverSettings(nameserver="127.0.0.1", port=dns_port)


def test_records_served_as_asked_pass_including_merged_spf_and_split_dkim(resolver):
    report = check_domain_dns(domain("good.test"), resolver=resolver)
    assert [(c.purpose, c.status) for c in report.checks] == [
        ("spf", "PASS"),
        ("dkim", "PASS"),
        ("dmarc", "PASS"),
    ]
    assert report.status == "PASS" and all(c.remedy is None for c in report.checks)
    assert report.resolver == f"127.0.0.1:{resolver.port}"


def test_relative_owner_names_are_queried_under_the_domain(resolver):
    report = check_domain_dns(domain("good.test", relative=True), resolver=resolver)
    assert report.status == "PASS"


def test_missing_records_fail_with_the_exact_record_to_publish(resolver):
    report = check_domain_dns(domain("missing.test"), resolver=resolver)
    assert report.status == "FAIL"
    assert [c.status for c in report.checks] == ["FAIL", "FAIL", "FAIL"]
    spf, dkim, dmarc = report.checks
    assert spf.remedy == f'publish TXT missing.test "{SPF}"'
    assert dkim.remedy == f'publish TXT sendapi._domainkey.missing.test "v=DKIM1; k=rsa; p={KEY}"'
    assert dmarc.remedy == 'publish TXT _dmarc.missing.test "v=DMARC1; p=quarantine"'
    assert "no v=spf1" in spf.summary and spf.served == ("google-site-verification=abc",)


def test_mismatching_records_fail_and_say_what_differs(resolver):
    report = check_domain_dns(domain("wrong.test"), resolver=resolver)
    spf, dkim, dmarc = report.checks
    assert spf.status == "FAIL" and "lacks include:spf.sendapi.co" in spf.summary
    assert dkim.status == "FAIL" and "another public key" in dkim.summary
    assert dmarc.status == "FAIL" and "weaker than the p=quarantine" in dmarc.summary
    assert all(c.remedy.startswith("publish TXT ") for c in report.checks)
    assert spf.to_dict()["expected"] == {
        "purpose": "spf",
        "type": "TXT",
        "name": "wrong.test",
        "value": SPF,
    }


def test_dmarc_p_none_is_a_warning_not_a_pass(resolver):
    report = check_domain_dns(domain("monitor.test", dmarc="v=DMARC1; p=none"), resolver=resolver)
    dmarc = report.check("dmarc")
    assert dmarc.status == "WARN" and "p=none" in dmarc.summary and "p=quarantine" in dmarc.remedy
    assert report.status == "WARN"


def test_two_spf_or_two_dmarc_records_fail(resolver):
    report = check_domain_dns(domain("double.test"), resolver=resolver)
    assert "permerror" in report.check("spf").summary
    assert report.check("dmarc").status == "FAIL" and "2 DMARC" in report.check("dmarc").summary


def test_a_dkim_cname_is_followed_as_a_cname_and_plus_all_fails(resolver):
    good = DnsRecord("dkim", "CNAME", "sendapi._domainkey.cname.test", "dkim.sendapi.co")
    assert check_record(good, domain="cname.test", resolver=resolver).status == "PASS"
    wrong = DnsRecord("dkim", "CNAME", "sendapi._domainkey.cname.test", "dkim2.sendapi.co.")
    check = check_record(wrong, domain="cname.test", resolver=resolver)
    assert check.status == "FAIL" and "points to dkim.sendapi.co" in check.summary
    spf = check_record(
        DnsRecord("spf", "TXT", "cname.test", SPF), domain="cname.test", resolver=resolver
    )
    assert spf.status == "FAIL" and "+all" in spf.summary


def test_records_the_api_does_not_list_are_a_failure():
    partial = EmailDomain.from_wire(
        {"id": "dom_x", "domain": "x.test", "verified": False, "records": {}}
    )
    report = check_domain_dns(partial, resolver=ResolverSettings(nameserver="127.0.0.1", port=9))
    assert [c.purpose for c in report.checks] == [
        "spf",
        "dkim",
        "dmarc",
    ] and report.status == "FAIL"


def test_dns_that_does_not_answer_fails_naming_the_resolver():
    with serve_zone("") as port:
        pass  # the port is free again: nothing answers there now
    silent = ResolverSettings(nameserver="127.0.0.1", port=port, timeout=0.3, lifetime=0.6)
    check = check_record(
        DnsRecord("spf", "TXT", "good.test", SPF), domain="good.test", resolver=silent
    )
    assert check.status == "FAIL" and f"127.0.0.1:{port} gave no answer" in check.summary


def test_the_system_resolver_is_the_default():
    assert ResolverSettings().describe() == "the system resolver"


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        (
            "v=DMARC1; p=reject; rua=mailto:a@b.test",
            {"v": "DMARC1", "p": "reject", "rua": "mailto:a@b.test"},
        ),
        ("v=DMARC1;p=none;", {"v": "DMARC1", "p": "none"}),
        (" V=DKIM1 ; K = rsa ; p=AB CD ", {"v": "DKIM1", "k": "rsa", "p": "AB CD"}),
    ],
)
def test_parse_tags_reads_tag_lists(value, tags):
    assert parse_tags(value) == tags


@pytest.mark.parametrize("value", ["v=DMARC1; p", "v=DMARC1; p=none; p=reject", "=x"])
def test_parse_tags_rejects_invalid_lists(value):
    with pytest.raises(ValueError):
        parse_tags(value)


@pytest.mark.parametrize(
    ("name", "fqdn"),
    [("@", "ex.test"), ("", "ex.test"), ("_dmarc", "_dmarc.ex.test"), ("_dmarc.ex.test.", "_dmarc.ex.test"),
     ("EX.TEST", "ex.test")],
)  # fmt: skip
def test_qualify_puts_relative_names_under_the_domain(name, fqdn):
    assert qualify(name, "ex.test") == fqdn


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [({"nameserver": "dns.example.test"}, "not an IP address"), ({"nameserver": "127.0.0.1", "port": 0}, "port"),
     ({"timeout": 0}, "positive")],
)  # fmt: skip
def test_bad_resolver_settings_are_refused_before_any_query(kwargs, problem):
    from runbook_lib.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=problem):
        ResolverSettings(**kwargs)


def test_a_machine_without_resolver_configuration_fails_the_check_not_the_run(monkeypatch):
    import dns.resolver

    def no_config(*args, **kwargs):
        raise dns.resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns.resolver, "Resolver", no_config)
    check = check_record(DnsRecord("spf", "TXT", "good.test", SPF), domain="good.test")
    assert check.status == "FAIL" and "no system resolver configured" in check.summary
