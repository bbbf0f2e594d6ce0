"""Are the SPF, DKIM and DMARC records SendAPI says to publish actually served by DNS?

``EmailDomain.records`` says what to publish; this module asks DNS (real queries with
``dnspython``, through the system's resolver or a configured ``nameserver:port``) what is served
and compares, one :class:`DnsRecordCheck` per record:

- **SPF** (TXT): exactly one ``v=spf1`` record at the name (two are a permerror), holding every
  mechanism SendAPI asks for (``include:…``); other mechanisms may be merged in. ``+all`` fails.
- **DKIM** (TXT or CNAME): the TXT's ``p=`` public key equals the one asked for (split strings are
  joined, whitespace ignored), or the CNAME points where asked.
- **DMARC** (TXT): exactly one ``v=DMARC1`` record; its ``p=`` at least as strict as asked
  (none < quarantine < reject). ``p=none`` only monitors, so it is a WARN.
- anything else: the served value equals the one asked for (whitespace and case of names aside).

PASS when served as asked; FAIL when missing or different, carrying the exact record to publish
(type, name, value) as the remedy; DNS that does not answer is a FAIL naming the resolver.

Tag lists (DKIM, DMARC) are parsed by :func:`parse_tags` (RFC 6376 §3.2 / RFC 7489 §6.4 grammar);
checkdmarc is not used: its checks resolve SPF includes and report addresses on the public
internet, which is not what is asked here and cannot run offline.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dns.exception
import dns.resolver

from ...core.errors import ConfigurationError
from .resources import DnsRecord, EmailDomain

__all__ = [
    "DnsRecordCheck",
    "DomainDnsReport",
    "ResolverSettings",
    "check_domain_dns",
    "check_record",
    "parse_tags",
    "qualify",
]

Status = Literal["PASS", "WARN", "FAIL"]
_ORDER = {"PASS": 0, "WARN": 1, "FAIL": 2}
DMARC_STRICTNESS = {"none": 0, "quarantine": 1, "reject": 2}
PURPOSES = ("spf", "dkim", "dmarc")


class _DnsDown(Exception):
    """DNS gave no usable answer (timeout, SERVFAIL, no nameserver)."""


@dataclass(frozen=True, kw_only=True)
class ResolverSettings:
    """Which DNS to ask: the system's resolver (default), or ``nameserver`` on ``port``."""

    nameserver: str | None = None
    port: int = 53
    timeout: float = 2.0
    lifetime: float = 5.0

    def __post_init__(self) -> None:
        if self.nameserver is not None:
            try:
                ipaddress.ip_address(self.nameserver)
            except ValueError:
                raise ConfigurationError(
                    f"dns nameserver {self.nameserver!r} is not an IP address.",
                    code="bad_nameserver",
                    remedy="give the resolver's IP (e.g. 127.0.0.1), or leave nameserver unset for the system's.",
                ) from None
        if not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise ConfigurationError(
                f"dns port {self.port!r} is not a port number.",
                code="bad_port",
                remedy="use 1-65535 (DNS is 53).",
            )
        if self.timeout <= 0 or self.lifetime <= 0:
            raise ConfigurationError(
                "dns timeout and lifetime must be positive seconds.",
                code="bad_timeout",
                remedy="e.g. timeout 2, lifetime 5.",
            )

    def build(self) -> dns.resolver.Resolver:
        """Raises ``_DnsDown`` when the system has no resolver configuration."""
        if self.nameserver is None:
            try:
                resolver = dns.resolver.Resolver()
            except (dns.resolver.NoResolverConfiguration, OSError) as exc:
                raise _DnsDown(f"no system resolver configured: {type(exc).__name__}") from None
        else:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [self.nameserver]
            resolver.port = self.port
        resolver.timeout = self.timeout
        resolver.lifetime = self.lifetime
        return resolver

    def describe(self) -> str:
        return (
            "the system resolver" if self.nameserver is None else f"{self.nameserver}:{self.port}"
        )


@dataclass(frozen=True)
class DnsRecordCheck:
    """One record: what SendAPI asked for, what DNS served, and the verdict."""

    purpose: str
    status: Status
    expected: DnsRecord
    served: tuple[str, ...]
    summary: str
    remedy: str | None = None

    @property
    def check_id(self) -> str:
        return f"sendapi.email.dns.{self.purpose}"

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check_id, "status": self.status, "purpose": self.purpose,
                "expected": self.expected.to_dict(), "served": list(self.served),
                "summary": self.summary, "remedy": self.remedy}  # fmt: skip


@dataclass(frozen=True)
class DomainDnsReport:
    """Every record of one sending domain; its status is the worst of them."""

    domain: str
    resolver: str
    checks: tuple[DnsRecordCheck, ...]

    @property
    def status(self) -> Status:
        return max((c.status for c in self.checks), key=_ORDER.__getitem__, default="FAIL")

    def check(self, purpose: str) -> DnsRecordCheck | None:
        return next((c for c in self.checks if c.purpose == purpose), None)

    def to_dict(self) -> dict[str, Any]:
        return {"domain": self.domain, "resolver": self.resolver, "status": self.status,
                "checks": [c.to_dict() for c in self.checks]}  # fmt: skip


def parse_tags(value: str) -> dict[str, str]:
    """A ``tag=value; tag=value`` list (DKIM, DMARC) as a dict; tag names lower-cased.

    Raises:
        ValueError: a part has no ``=`` or a tag repeats (both make the record invalid).
    """
    tags: dict[str, str] = {}
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, tag_value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            raise ValueError(f"{part!r} is not tag=value")
        if name in tags:
            raise ValueError(f"tag {name!r} appears twice")
        tags[name] = tag_value.strip()
    return tags


def qualify(name: str, domain: str) -> str:
    """An owner name as a FQDN without the trailing dot (``@`` and relative names under domain)."""
    name, domain = name.strip().rstrip(".").lower(), domain.strip().rstrip(".").lower()
    if name in ("", "@"):
        return domain
    if name == domain or name.endswith("." + domain):
        return name
    return f"{name}.{domain}"


def _query(resolver: dns.resolver.Resolver, name: str, rdtype: str) -> list[str]:
    try:
        answer = resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.YXDOMAIN) as exc:
        raise _DnsDown(type(exc).__name__) from None
    if answer.rrset is None:
        return []
    if rdtype == "TXT":
        return [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
    return [r.to_text().rstrip(".").lower() for r in answer.rrset]


def _publish(record: DnsRecord, name: str) -> str:
    return f'publish {record.type} {name} "{record.value}"'


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip())


def check_record(
    record: DnsRecord, *, domain: str, resolver: ResolverSettings | None = None
) -> DnsRecordCheck:
    """Query DNS for ``record`` and judge what is served."""
    settings = resolver or ResolverSettings()
    name = qualify(record.name, domain)
    rtype = record.type.upper()
    publish = _publish(record, name)

    def result(
        status: Status, summary: str, served: Sequence[str] = (), remedy: str | None = None
    ) -> DnsRecordCheck:
        if status != "PASS" and remedy is None:
            remedy = publish
        return DnsRecordCheck(record.purpose, status, record, tuple(served), summary, remedy)

    try:
        served = _query(settings.build(), name, rtype)
    except _DnsDown as exc:
        return result("FAIL", f"{settings.describe()} gave no answer for {rtype} {name} ({exc}).")
    if rtype == "CNAME":
        target = record.value.strip().rstrip(".").lower()
        if not served:
            return result("FAIL", f"no CNAME is served at {name}.")
        if target not in served:
            return result(
                "FAIL", f"the CNAME at {name} points to {served[0]}, not {target}.", served
            )
        return result("PASS", f"{name} is a CNAME to {target}.", served)
    judge = {"spf": _judge_spf, "dkim": _judge_dkim, "dmarc": _judge_dmarc}.get(
        record.purpose, _judge_exact
    )
    status, summary = judge(record, name, served)
    remedy = None
    if status == "WARN" and record.purpose == "dmarc":
        remedy = (f"raise the policy at {name} to p=quarantine (then p=reject) once the aggregate "
                  "reports show only your own senders.")  # fmt: skip
    return result(status, summary, served, remedy)


def _judge_spf(record: DnsRecord, name: str, served: list[str]) -> tuple[Status, str]:
    spf = [s for s in served if s.lower().split(" ", 1)[0] == "v=spf1"]
    if not spf:
        return "FAIL", f"no v=spf1 TXT record is served at {name}."
    if len(spf) > 1:
        return (
            "FAIL",
            f"{len(spf)} v=spf1 records are served at {name}; SPF allows one (permerror).",
        )
    have = {t.lower() for t in spf[0].split()[1:]}
    if "+all" in have or "all" in have:
        return "FAIL", f"the SPF record at {name} ends in +all: anyone may send as the domain."
    want = [t for t in record.value.split()[1:] if not t.lower().lstrip("+-~?").startswith("all")]
    missing = [t for t in want if t.lower() not in have]
    if missing:
        return "FAIL", f"the SPF record at {name} lacks {' '.join(missing)}."
    return "PASS", f"the SPF record at {name} holds {' '.join(want) or 'what was asked'}."


def _tags_or_none(value: str) -> dict[str, str] | None:
    try:
        return parse_tags(value)
    except ValueError:
        return None


def _judge_dkim(record: DnsRecord, name: str, served: list[str]) -> tuple[Status, str]:
    if not served:
        return "FAIL", f"no DKIM TXT record is served at {name}."
    wanted = _tags_or_none(record.value) or {}
    want_key = re.sub(r"\s+", "", wanted.get("p", ""))
    for value in served:
        tags = _tags_or_none(value)
        if tags is None:
            continue
        if want_key and re.sub(r"\s+", "", tags.get("p", "")) == want_key:
            return "PASS", f"the DKIM key at {name} is the one SendAPI signs with."
        if not want_key and _squash(value) == _squash(record.value):
            return "PASS", f"the DKIM record at {name} is as asked."
    return "FAIL", f"the DKIM record at {name} holds another public key (p=) than SendAPI's."


def _judge_dmarc(record: DnsRecord, name: str, served: list[str]) -> tuple[Status, str]:
    dmarc = [s for s in served if s.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return "FAIL", f"no v=DMARC1 TXT record is served at {name}."
    if len(dmarc) > 1:
        return (
            "FAIL",
            f"{len(dmarc)} DMARC records are served at {name}; receivers then apply none.",
        )
    tags = _tags_or_none(dmarc[0])
    policy = (tags or {}).get("p", "").lower()
    if policy not in DMARC_STRICTNESS:
        return "FAIL", f"the DMARC record at {name} has no valid p= (none, quarantine or reject)."
    asked = ((_tags_or_none(record.value) or {}).get("p") or "none").lower()
    if DMARC_STRICTNESS[policy] < DMARC_STRICTNESS.get(asked, 0):
        return (
            "FAIL",
            f"the DMARC policy at {name} is p={policy}, weaker than the p={asked} asked for.",
        )
    if policy == "none":
        return "WARN", (
            f"the DMARC policy at {name} is p=none: failures are only reported, never "
            "quarantined or rejected; move to p=quarantine once reports are clean."
        )
    return "PASS", f"the DMARC policy at {name} is p={policy}."


def _judge_exact(record: DnsRecord, name: str, served: list[str]) -> tuple[Status, str]:
    if not served:
        return "FAIL", f"no {record.type} record is served at {name}."
    if _squash(record.value).lower() in {_squash(s).lower() for s in served}:
        return "PASS", f"the {record.type} record at {name} is as asked."
    return "FAIL", f"the {record.type} record at {name} differs from the one asked for."


def check_domain_dns(
    domain: EmailDomain, *, resolver: ResolverSettings | None = None
) -> DomainDnsReport:
    """Check every record the API gave for ``domain``; a missing SPF/DKIM/DMARC entry is a FAIL."""
    settings = resolver or ResolverSettings()
    checks = [check_record(r, domain=domain.domain, resolver=settings) for r in domain.records]
    for purpose in PURPOSES:
        if domain.record(purpose) is None:
            placeholder = DnsRecord(purpose, "TXT", domain.domain, "")
            checks.append(DnsRecordCheck(
                purpose, "FAIL", placeholder, (),
                f"SendAPI lists no {purpose.upper()} record for {domain.domain}.",
                f"GET /email/domains/{domain.id} should list it; ask SendAPI support, quoting the domain id.",
            ))  # fmt: skip
    return DomainDnsReport(domain.domain, settings.describe(), tuple(checks))
