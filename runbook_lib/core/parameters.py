"""Parameter files: one YAML file per environment, typed and validated before any network call.

Secrets are never values here: a file names the environment variable that holds each one
(``client_secret_env: REDCLOUD_CLIENT_SECRET``). Every field whose name ends in ``_env`` is such a
name: one validator checks them all (without ever echoing the value, which may be the secret
pasted by mistake), and loading a file registers the value of every one that is set with the leak
guard, before anything runs and whether or not the step that reads it is enabled. Error messages
never quote the value of a field that could hold a secret. Relative paths in a file are resolved
against the file's own folder, so a run does not depend on the directory it was started from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from ..security.secrets import NOT_AN_ENV_NAME, REGISTRY, is_env_name, register_env_secrets
from .errors import ParameterError
from .invocation import from_cli, set_setting

__all__ = [
    "Attestation",
    "AuditParameters",
    "DrillParameters",
    "EventSourceParameters",
    "ExpectedNumber",
    "PrivacyParameters",
    "ProbeParameters",
    "ProviderParameters",
    "RetryParameters",
    "RunbookParameters",
    "SettingsSection",
    "TestSendParameters",
    "WebhookParameters",
    "load_parameters",
    "parameters_from_dict",
    "secret_env_fields",
]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ENV_SUFFIX = "_env"  # a field naming the environment variable that holds a secret
# Fields whose value could be a secret (or carry one, as a URL's user info can): errors about
# them never quote the value.
_SECRET_WORDS = ("secret", "password", "token", "key", "url", "credential")

# One line of remedy per field, shown next to the problem.
_FIXES = {
    "client_secret_env": "name the environment variable that holds the client secret, "
    "e.g. REDCLOUD_CLIENT_SECRET.",
    "base_url": "use the API base URL, e.g. https://api.redcloud.example (no path).",
    "to": "use an E.164 number such as +15005550001 that is listed in test_send.allowlist.",
    "allowlist": "list the E.164 test destinations you own, e.g. ['+15005550001'].",
    "webhook_override": "use 'none' (no override), 'any' (an enabled override) or the exact URL.",
    "expect": "use one of: delivered, failed, sent, queued.",
    "kind": "use receiver_sqlite (the reference receiver's store), jsonl, parquet or sql; "
    "for provider.kind a registered provider (redcloud).",
    "ledger_path": "name a file, e.g. ../state/send-ledger.sqlite (relative to the parameter file).",
}

_SECRET_HINT = (
    "secrets are never values in a parameter file: name the environment variable instead "
    "(client_secret_env, webhook_secret_env)."
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _env_names(cls, value: Any, info: ValidationInfo) -> Any:
        """Every ``*_env`` field of every section names a variable, never holds a value."""
        named = bool(info.field_name and info.field_name.endswith(ENV_SUFFIX))
        if named and value is not None and not is_env_name(value):
            if isinstance(value, str):
                # Most likely the secret itself: the leak guard redacts it wherever it lands.
                REGISTRY.register(value, f"value pasted into {info.field_name}")
            raise ValueError(f"the value {NOT_AN_ENV_NAME}")
        return value


#: The base of a provider's own settings section (``settings_model``): strict, frozen, and its
#: ``*_env`` fields are checked and registered like every other section's.
SettingsSection = _Strict

# Required only when provider.kind is redcloud (a key-based provider has no OAuth client).
_REDCLOUD_PROVIDER_FIELDS = ("client_id", "client_secret_env")
_REDCLOUD_TOP_LEVEL = ("numbers", "test_send")


def _init_errors(
    exc: ValidationError, prefix: tuple[str | int, ...] = ()
) -> list[InitErrorDetails]:
    """``exc``'s errors, ready to be raised again (with ``prefix`` in front of each location)."""
    out: list[InitErrorDetails] = []
    for e in exc.errors(include_url=False):
        detail = InitErrorDetails(type=e["type"], loc=prefix + tuple(e["loc"]), input=e["input"])
        if "ctx" in e:
            detail["ctx"] = e["ctx"]
        out.append(detail)
    return out


def _missing(data: dict[str, Any], names: tuple[str, ...]) -> list[InitErrorDetails]:
    return [InitErrorDetails(type="missing", loc=(n,), input=data) for n in names if n not in data]


def _kind_of(data: dict[str, Any]) -> str:
    provider = data.get("provider")
    kind = provider.get("kind", "redcloud") if isinstance(provider, dict) else "redcloud"
    return kind if isinstance(kind, str) else "redcloud"


class ProviderParameters(_Strict):
    """Which provider, where it is, and who we are to it.

    ``kind`` names a registered provider (``redcloud`` by default, so files without it keep
    working); ``sandbox: true`` says the target is the provider's contract sandbox — the only way
    the runbook learns it (it never probes a URL to find out), and what enables the drills and
    fault profiles that need provider-side control.
    """

    kind: str = "redcloud"
    sandbox: bool = False
    base_url: str
    token_url: str | None = None
    # Red Cloud's OAuth client: required (by _redcloud_credentials) only when kind is redcloud.
    client_id: str | None = Field(default=None, min_length=1)
    client_secret_env: str | None = None
    scope: str | None = None
    expected_environment: Literal["production", "sandbox"] | None = None
    expected_client_id: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # How long the provider replays an Idempotency-Key (Red Cloud: 24 h). Past it a repeat of a
    # key is a new message, so the runbook never re-POSTs a key older than this.
    idempotency_window_hours: float = Field(default=24.0, gt=0, le=24 * 30)

    @model_validator(mode="wrap")
    @classmethod
    def _redcloud_credentials(cls, data: Any, handler: Any) -> Any:
        """Red Cloud's client fields are required for redcloud only (the same "missing" errors)."""
        errors: list[InitErrorDetails] = []
        if isinstance(data, dict) and _kind_of({"provider": data}) == "redcloud":
            errors = _missing(data, _REDCLOUD_PROVIDER_FIELDS)
        try:
            result = handler(data)
        except ValidationError as exc:
            errors = _init_errors(exc) + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return result

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("the value is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("kind")
    @classmethod
    def _registered(cls, value: str) -> str:
        from ..providers.base import provider_names  # names only; no provider is imported

        if value not in provider_names():
            raise ValueError(
                f"{value!r} is not a registered provider (one of: {', '.join(provider_names())})"
            )
        return value

    @property
    def resolved_token_url(self) -> str:
        return self.token_url or f"{self.base_url}/oauth/token"


class RetryParameters(_Strict):
    """Client retry policy for what the contract calls retryable."""

    max_attempts: int = Field(default=4, ge=1, le=10)
    base_delay_seconds: float = Field(default=0.5, ge=0, le=60)
    max_delay_seconds: float = Field(default=8.0, ge=0, le=300)
    max_retry_after_seconds: float = Field(default=120.0, ge=0, le=3600)


class ExpectedNumber(_Strict):
    """A number the integration sends from, and the state it must be in."""

    number_id: str = Field(min_length=1)
    sms: bool = True
    mms: bool = False
    webhook_override: str = "none"

    @field_validator("webhook_override")
    @classmethod
    def _override(cls, value: str) -> str:
        if value in ("none", "any") or re.match(r"^https?://", value):
            return value
        raise ValueError(f"{value!r} is not 'none', 'any' or a URL")


class TestSendParameters(_Strict):
    """The controlled test send: where from, where to, what outcome it must reach."""

    __test__ = False  # not a pytest class

    enabled: bool = True
    send_from: str
    to: str
    allowlist: list[str] = Field(min_length=1)
    body: str = Field(
        default="Red Cloud go-live test (run {run_id})", min_length=1, max_length=1600
    )
    external_reference_prefix: str = Field(default="golive", max_length=64)
    max_sends: int = Field(default=1, ge=1, le=10)
    expect: Literal["delivered", "failed", "sent", "queued"] = "delivered"
    lifecycle_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("to")
    @classmethod
    def _e164(cls, value: str) -> str:
        if not E164.match(value):
            raise ValueError(f"{value!r} is not an E.164 number")
        return value

    @field_validator("allowlist")
    @classmethod
    def _e164_list(cls, values: list[str]) -> list[str]:
        bad = [v for v in values if not E164.match(v)]
        if bad:
            raise ValueError(f"not E.164: {', '.join(map(repr, bad))}")
        return values

    @model_validator(mode="after")
    def _allowlisted(self) -> TestSendParameters:
        if self.to not in self.allowlist:
            raise ValueError(f"destination {self.to} is not in allowlist")
        return self


class EventSourceParameters(_Strict):
    """Where the webhook events the integration received can be read.

    ``receiver_sqlite`` (the reference receiver's store), ``jsonl`` or ``parquet`` (exports of raw
    envelopes; ``path``), or ``sql``: the integration's own table at ``url`` (no password in it;
    ``password_env`` names the variable that holds it), with ``columns`` mapping the model's
    columns (event_id, event_type, message_id, ...) to the table's.
    """

    kind: Literal["receiver_sqlite", "jsonl", "parquet", "sql"] = "receiver_sqlite"
    path: Path = Path("../state/receiver-events.sqlite")
    url: str | None = None
    password_env: str | None = None
    table: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sql_needs_a_mapping(self) -> EventSourceParameters:
        if self.kind == "sql":
            missing = [k for k in ("url", "table") if not getattr(self, k)]
            missing += [f"columns.{c}" for c in ("event_id", "event_type") if c not in self.columns]
            if missing:
                raise ValueError(
                    "event_source kind sql needs "
                    + ", ".join(missing)
                    + " (the table and which of its columns hold each event field)"
                )
            # The reader's own check, now: a bad mapping is bad input, not a failed notebook.
            from ..sources.sql import mapping_problems

            problems = mapping_problems(self.table, self.columns)
            if problems:
                raise ValueError("invalid SQL column mapping: " + " ".join(problems))
        return self


class Attestation(_Strict):
    """A person confirming one readiness item the runbook cannot verify itself."""

    item: str
    by: str = Field(min_length=1)
    when: date  # "on" would be read as a YAML boolean
    note: str = ""
    rehearsal: bool = False
    valid_days: int = Field(default=180, ge=1, le=730)


class AuditParameters(_Strict):
    """Thresholds of the incident audit (``runbook audit``); the window is chosen per run."""

    stuck_after_minutes: float = Field(default=15.0, gt=0)
    delivery_rate_warn: float = Field(default=0.95, ge=0, le=1)
    api_error_rate_fail: float = Field(default=0.2, gt=0, le=1)
    rejection_rate_fail: float = Field(default=0.05, gt=0, le=1)
    backlog_share_fail: float = Field(default=0.2, gt=0, le=1)
    api_probe_calls: int = Field(default=6, ge=1, le=50)
    # A window with no webhook event at all is a dead pipeline, not a healthy one, unless the
    # environment is quiet by design.
    expect_traffic: bool = True


class PrivacyParameters(_Strict):
    """How much personal data reports may show."""

    mask_destinations: bool = True


class WebhookParameters(_Strict):
    """What the account webhook must look like, and where the integration's endpoint is."""

    expect_configured: bool = True
    endpoint_url: str | None = None
    signing_secret_env: str | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("the value is not an http(s) URL")
        return value


class DrillParameters(_Strict):
    """The failure drills section of go-live (and ``runbook drills``)."""

    enabled: bool = False
    outage_seconds: float = Field(default=2.0, gt=0, le=600)
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)


class ProbeParameters(_Strict):
    """The webhook conformance probe section of go-live (and ``runbook probe``)."""

    enabled: bool = False
    burst: int = Field(default=20, ge=1, le=500)


class RunbookParameters(_Strict):
    """One environment's parameter file."""

    environment: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    provider: ProviderParameters
    retry: RetryParameters = RetryParameters()
    # Red Cloud's sending numbers and controlled send: required (by _provider_sections) for it only.
    numbers: list[ExpectedNumber] | None = Field(default=None, min_length=1)
    test_send: TestSendParameters | None = None
    webhooks: WebhookParameters = WebhookParameters()
    drills: DrillParameters = DrillParameters()
    probe: ProbeParameters = ProbeParameters()
    fault_profile: dict[str, Any] | None = None
    attestations: list[Attestation] = Field(default_factory=list)
    privacy: PrivacyParameters = PrivacyParameters()
    audit: AuditParameters = AuditParameters()
    event_source: EventSourceParameters = EventSourceParameters()
    ledger_path: Path = Path("../state/send-ledger.sqlite")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    clock_skew_warn_seconds: float = Field(default=30.0, gt=0)
    clock_skew_fail_seconds: float = Field(default=240.0, gt=0)
    # The provider's own section (the top-level key named after provider.kind, e.g. ``sendapi:``),
    # validated into the provider's ``settings_model``; None for a provider without one.
    settings: Any = None

    @model_validator(mode="wrap")
    @classmethod
    def _provider_sections(cls, data: Any, handler: Any) -> Any:
        """The sections that depend on provider.kind: its settings key, Red Cloud's numbers.

        Every problem (these and the rest of the file's) is reported together.
        """
        if not isinstance(data, dict):
            return handler(data)
        from ..providers.base import get_provider, provider_names

        data = dict(data)
        kind = _kind_of(data)
        errors: list[InitErrorDetails] = []
        if "settings" in data:  # only ever filled from the provider's own key
            errors.append(
                InitErrorDetails(type="extra_forbidden", loc=("settings",), input=data["settings"])
            )
            del data["settings"]
        if kind == "redcloud":
            errors += _missing(data, _REDCLOUD_TOP_LEVEL)
        model = get_provider(kind).settings_model if kind in provider_names() else None
        if model is not None:
            raw = data.pop(kind, None)
            try:
                data["settings"] = model.model_validate({} if raw is None else raw)
            except ValidationError as exc:
                errors += _init_errors(exc, (kind,))
        try:
            result = handler(data)
        except ValidationError as exc:
            errors = _init_errors(exc) + errors
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return result

    @field_validator("ledger_path", mode="before")
    @classmethod
    def _ledger_file(cls, value: Any) -> Any:
        # A Path drops a trailing slash, so a folder given as "state/" is caught on the raw text.
        if isinstance(value, str) and (not value.strip() or value.rstrip()[-1] in "/\\"):
            raise ValueError(f"{value!r} names a folder, not the ledger's SQLite file")
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @field_validator("fault_profile")
    @classmethod
    def _faults(cls, value: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        provider = info.data.get("provider")
        if value is not None and provider is not None:
            from ..providers.base import get_provider  # validation only; applied by the run

            get_provider(provider.kind).sandbox().fault_profile.from_dict(value)
        return value

    @model_validator(mode="after")
    def _send_from_is_expected(self) -> RunbookParameters:
        ids = [n.number_id for n in self.numbers or ()]
        sender = self.test_send.send_from if self.test_send is not None else None
        if self.numbers is not None and sender is not None and sender not in ids:
            raise ValueError(
                f"test_send.send_from {sender!r} is not one of numbers ({', '.join(ids)})"
            )
        if len(set(ids)) != len(ids):
            raise ValueError("numbers lists the same number_id twice")
        from .gate import load_catalog

        known = {i.item_id for i in load_catalog(self.provider.kind)}
        unknown = sorted({a.item for a in self.attestations} - known)
        if unknown:
            raise ValueError(
                f"attestations name unknown item(s) {', '.join(unknown)}; "
                f"the ids are in runbook_lib/providers/{self.provider.kind}/readiness.yaml"
            )
        if self.probe.enabled and not (
            self.webhooks.endpoint_url and self.webhooks.signing_secret_env
        ):
            raise ValueError(
                "probe.enabled needs webhooks.endpoint_url and webhooks.signing_secret_env"
            )
        return self

    def with_base_dir(self, base_dir: Path) -> RunbookParameters:
        """Resolve relative paths against ``base_dir`` (the parameter file's folder)."""

        def resolve(p: Path) -> Path:
            return p if p.is_absolute() else (base_dir / p).resolve()

        return self.model_copy(
            update={
                "ledger_path": resolve(self.ledger_path),
                "event_source": self.event_source.model_copy(
                    update={"path": resolve(self.event_source.path)}
                ),
            }
        )


def secret_env_fields(model: Any, path: str = "") -> Iterator[tuple[str, str, str]]:
    """``(field path, purpose, variable name)`` of every ``*_env`` field set in ``model``.

    Found by walking the model (sections, lists and mappings of them), not from a list of names,
    so a section added later is covered.
    """
    if isinstance(model, BaseModel):
        items: Any = ((name, getattr(model, name)) for name in type(model).model_fields)
    elif isinstance(model, dict):
        items = model.items()
    elif isinstance(model, list | tuple):
        items = ((f"[{i}]", v) for i, v in enumerate(model))
    else:
        return
    for name, value in items:
        where = f"{path}{name}" if str(name).startswith("[") or not path else f"{path}.{name}"
        if isinstance(name, str) and name.endswith(ENV_SUFFIX) and isinstance(value, str):
            yield where, name.removesuffix(ENV_SUFFIX).replace("_", " "), value
        else:
            yield from secret_env_fields(value, where)


def _could_hold_secret(error: dict[str, Any]) -> bool:
    names = [str(p).lower() for p in error["loc"] if isinstance(p, str)]
    return any(n.endswith(ENV_SUFFIX) or any(w in n for w in _SECRET_WORDS) for n in names)


def _without_input(message: str, value: Any) -> str:
    """``message`` with the input value (and its repr) taken out."""
    if isinstance(value, str) and value:
        for shown in (repr(value), value):
            message = message.replace(shown, "the value")
    return message


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"])
    loc = loc.replace(".[", "[")
    field = str(error["loc"][-1]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        hint = (
            _SECRET_HINT
            if "secret" in field.lower() or "password" in field.lower() or "token" in field.lower()
            else "remove it or check its spelling against parameters/sandbox.yaml."
        )
        return f"{loc}: unknown key. Fix: {hint}"
    if error["type"] == "missing":
        return f"{loc}: required but missing. Fix: add it (see parameters/sandbox.yaml)."
    message = error["msg"].removeprefix("Value error, ")
    if _could_hold_secret(error):
        message = _without_input(message, error.get("input"))
    fix = _FIXES.get(field) or (
        "give the name of the environment variable that holds it (letters, digits, "
        "underscores) and export the value in that variable; never the value itself."
        if field.endswith(ENV_SUFFIX)
        else None
    )
    where = loc or "(file)"
    return f"{where}: {message}." + (f" Fix: {fix}" if fix else "")


def parameters_from_dict(data: Any, *, source: str = "parameters") -> RunbookParameters:
    """Validate a mapping; every problem is named with its fix in one :class:`ParameterError`."""
    if not isinstance(data, dict):
        raise ParameterError(
            f"{source}: the file must be a YAML mapping of keys to values.",
            remedy="start from parameters/sandbox.yaml.",
        )
    try:
        params = RunbookParameters.model_validate(data)
    except ValidationError as exc:
        # The input is read only to take it out of messages; it is never part of one.
        problems = [_describe(e) for e in exc.errors(include_url=False, include_input=True)]
        if len(problems) == 1:  # one line, for cron mail and the report's headline
            raise ParameterError(f"{source}: {problems[0]}") from None
        raise ParameterError(
            f"{source} has {len(problems)} problem(s):", problems=problems
        ) from None
    # Before anything runs: a secret is guarded even if the step that reads it is disabled.
    register_env_secrets((purpose, name) for _, purpose, name in secret_env_fields(params))
    return params


def load_parameters(path: str | Path) -> RunbookParameters:
    """Read and validate a parameter file.

    Raises:
        ParameterError: the file is missing, not YAML, or invalid; every problem is listed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(
            f"parameter file {path} does not exist.",
            remedy=set_setting(
                (
                    "params",
                    "parameters/sandbox.yaml" if from_cli() else "../parameters/sandbox.yaml",
                )
            ),
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"parameter file {path} cannot be read: {exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParameterError(
            f"parameter file {path} is not valid YAML{where}.",
            remedy="fix the indentation or quoting there.",
        ) from None
    return parameters_from_dict(data, source=f"parameter file {path.name}").with_base_dir(
        path.resolve().parent
    )
