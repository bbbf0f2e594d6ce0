"""Webhook events from the integration's own PostgreSQL table, in the normalized columnar model.

The integration keeps its webhook events in a table of its own shape; a :class:`SqlMapping` names
that table and, for each model column, the integration's column. Only plain identifiers are
accepted (quoted with :class:`psycopg.sql.Identifier`), never SQL text, and the only filter is a
time window on the mapped ``received_at`` column, passed as query parameters.

The URL never carries the password: it is read from the environment variable named by
``password_env`` and registered for the leak guard. Connection and query failures raise
:class:`~runbook_lib.errors.EventSourceError` with a message built here (host, database, the
problem, the fix) — never psycopg's text, whose attached connection can show the password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..core.errors import EventSourceError, ParameterError
from ..core.events import WebhookEvent
from ..security.secrets import secret_from_env
from .model import EVENT_SCHEMA, correlation, events_from_frame

__all__ = ["SQL_EVENT_SCHEMA", "SqlMapping", "SqlSource", "mapping_problems", "read_sql_events"]

SQL_EVENT_SCHEMA = EVENT_SCHEMA  # the model; the name is kept for readers of this module

REQUIRED_COLUMNS = ("event_id", "event_type")
_TIMESTAMPS = ("occurred_at", "received_at")
# PostgreSQL truncates identifiers past 63 bytes; plain ASCII names only.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_CHUNK_ROWS = 10_000


def _sql_type(column: str) -> str:
    """The server-side cast for a model column (timestamps travel as epoch microseconds)."""
    if column in _TIMESTAMPS:
        return "timestamptz"
    if column == "delivery_count":
        return "integer"
    if column in ("sequence", "arrival"):
        return "bigint"
    return "text"


def _wire_dtype(column: str) -> pl.DataType:
    return pl.Int64() if column in _TIMESTAMPS else SQL_EVENT_SCHEMA[column]


def mapping_problems(table: object, columns: object) -> list[str]:
    """What is wrong with a table name and column mapping, each with its fix (empty: nothing).

    The one check of a mapping: :class:`SqlMapping` runs it, and so does the parameter file's
    ``event_source`` section, so a bad mapping is refused before anything runs.
    """
    problems: list[str] = []
    parts = table.split(".") if isinstance(table, str) else []
    if not parts or len(parts) > 2 or not all(_IDENTIFIER.fullmatch(p) for p in parts):
        problems.append(
            f"table {table!r} is not a plain table name: use letters, digits and "
            "underscores, optionally schema.table (no quotes, spaces or SQL)."
        )
    if not isinstance(columns, dict):
        problems.append("columns must map model column names to the integration's columns.")
        return problems
    for model, source in columns.items():
        if model not in SQL_EVENT_SCHEMA:
            problems.append(
                f"columns: {model!r} is not a model column; "
                f"use one of {', '.join(SQL_EVENT_SCHEMA)}."
            )
        if not isinstance(source, str) or not _IDENTIFIER.fullmatch(source):
            problems.append(
                f"columns.{model}: {source!r} is not a plain column name: use letters, "
                "digits and underscores (no quotes, expressions or SQL)."
            )
    for required in REQUIRED_COLUMNS:
        if required not in columns:
            problems.append(
                f"columns.{required} is required: name the integration's column that "
                f"holds the {required}."
            )
    return problems


@dataclass(frozen=True)
class SqlMapping:
    """Where the integration keeps its webhook events and what its columns are called.

    Args:
        table: the table (or view), optionally schema-qualified: ``webhook_events`` or
            ``ops.webhook_events``.
        columns: model column → the integration's column name, e.g. ``{"event_id": "evt_uuid"}``.
            ``event_id`` and ``event_type`` are required; unmapped columns are null
            (``delivery_count`` 1, ``arrival`` from ``received_at`` order).

    Raises:
        ParameterError: a name is not a plain identifier, a model column is unknown, or a
            required one is missing — before any connection is made.
    """

    table: str
    columns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every name again (the ``columns`` dict could have been changed since)."""
        problems = mapping_problems(self.table, self.columns)
        if problems:
            raise ParameterError("invalid SQL event source mapping:", problems=problems)

    def table_identifier(self) -> sql.Identifier:
        return sql.Identifier(*self.table.split("."))


@dataclass(frozen=True)
class _Target:
    """Public connection facts for messages: never the password."""

    host: str
    port: str
    dbname: str
    user: str

    def __str__(self) -> str:
        return f"PostgreSQL database {self.dbname!r} on {self.host}:{self.port} as {self.user!r}"


def _target(url: str) -> _Target:
    """Parse ``url`` and refuse one that carries a password.

    Raises:
        ParameterError: unparseable, or a password in it (the URL itself is never echoed).
    """
    try:
        info = conninfo_to_dict(url)
    except (psycopg.Error, TypeError):
        # psycopg's message quotes the string, which may hold a password.
        raise ParameterError(
            "the event source URL is not a valid PostgreSQL URL or key=value connection string.",
            remedy="use postgresql://USER@HOST:PORT/DBNAME and name the password's environment "
            "variable in password_env.",
        ) from None
    host = str(info.get("host") or info.get("hostaddr") or "localhost")
    user = str(info.get("user") or "(default user)")
    target = _Target(
        host=host,
        port=str(info.get("port") or "5432"),
        dbname=str(info.get("dbname") or info.get("user") or "(default database)"),
        user=user,
    )
    if info.get("password"):
        raise ParameterError(
            f"the event source URL for {target} contains a password.",
            remedy="remove it from the URL, put the password in an environment variable and "
            "name it in password_env.",
        )
    return target


def _check_bound(name: str, value: datetime | None) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, datetime):
        return [f"{name} must be a datetime, got {type(value).__name__}."]
    if value.tzinfo is None or value.utcoffset() is None:
        return [f"{name} ({value.isoformat()}) has no time zone: pass an aware datetime (UTC)."]
    return []


def _connect_problem(text: str, target: _Target, *, has_password: bool) -> tuple[str, str, str]:
    """(code, problem, fix) for a failed connection, from libpq's text (which is not shown)."""
    low = text.lower()
    if "password authentication failed" in low or "authentication failed" in low:
        return (
            "db_auth_failed",
            f"the server refused the password for user {target.user!r}",
            "check the password in the environment variable named by password_env (and the "
            "user in the URL); a rotated password must be updated there too.",
        )
    if "no password supplied" in low or "password is required" in low:
        if has_password:
            fix = "check that the environment variable named by password_env holds the password."
        else:
            fix = "put the password in an environment variable and name it in password_env."
        return ("db_auth_failed", "the server asks for a password and none was sent", fix)
    if "role" in low and "does not exist" in low:
        return (
            "db_auth_failed",
            f"the server has no user {target.user!r}",
            "check the user in the URL (postgresql://USER@HOST:PORT/DBNAME).",
        )
    if "database" in low and "does not exist" in low:
        return (
            "db_not_found",
            f"the server has no database {target.dbname!r}",
            "check the database name at the end of the URL.",
        )
    if "no pg_hba.conf entry" in low:
        return (
            "db_not_allowed",
            "the server does not accept connections from this host for this user and database",
            "ask the database owner to allow this host (pg_hba.conf), or check sslmode in the URL.",
        )
    if "timeout expired" in low or "timed out" in low:
        return (
            "db_unreachable",
            "no answer within 10 s",
            "check the host and port in the URL and that a firewall lets this host through.",
        )
    if "could not translate host name" in low or "name or service not known" in low:
        return (
            "db_unreachable",
            f"the host name {target.host!r} does not resolve",
            "check the host in the URL and this machine's DNS.",
        )
    if "connection refused" in low or "no such file or directory" in low:
        return (
            "db_unreachable",
            "nothing accepts connections there",
            "check the host and port in the URL and that the database server is running.",
        )
    if "ssl" in low:
        return (
            "db_ssl_failed",
            "the TLS negotiation failed",
            "check sslmode (and sslrootcert) in the URL against what the server requires.",
        )
    return (
        "db_connect_failed",
        "the connection failed",
        "check the URL, that the server is running and reachable, and the password in the "
        "environment variable named by password_env.",
    )


def _query_problem(exc: psycopg.Error, mapping: SqlMapping) -> tuple[str, str]:
    """(problem, fix) for a failed query; the server's primary message holds no secret."""
    diag = getattr(exc, "diag", None)
    detail = (diag.message_primary if diag is not None else None) or type(exc).__name__
    state = getattr(exc, "sqlstate", None) or ""
    if state == "42P01":
        fix = f"check SqlMapping.table ({mapping.table!r}) and the search_path of the user."
    elif state == "42703":
        fix = "check the column names in SqlMapping.columns against the table."
    elif state == "42501":
        fix = f"grant the user SELECT on {mapping.table!r} (a read-only role is enough)."
    elif state.startswith("22") or state in ("42846", "42883"):
        fix = (
            "a mapped column holds values of the wrong kind: timestamps must be timestamptz, "
            "timestamp or ISO-8601 text; sequence, delivery_count and arrival whole numbers."
        )
    else:
        fix = "check the mapping against the table; the server's reason is quoted above."
    return f"reading {mapping.table!r} failed: {detail}", fix


def _select(mapping: SqlMapping, since: datetime | None, until: datetime | None) -> sql.Composed:
    items = []
    for model, source in mapping.columns.items():
        expr = sql.SQL("{}::{}").format(sql.Identifier(source), sql.SQL(_sql_type(model)))
        if model in _TIMESTAMPS:
            # Epoch microseconds: exact, and no Python datetime objects per row.
            expr = sql.SQL("(extract(epoch from {}) * 1000000)::bigint").format(expr)
        items.append(sql.SQL("{} AS {}").format(expr, sql.Identifier(model)))
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(items), mapping.table_identifier()
    )
    if since is None and until is None:
        return query
    # The caller has checked that received_at is mapped when a bound is given.
    received = sql.SQL("{}::timestamptz").format(sql.Identifier(mapping.columns["received_at"]))
    conditions = []
    if since is not None:
        conditions.append(sql.SQL("{} >= %(since)s").format(received))
    if until is not None:
        conditions.append(sql.SQL("{} < %(until)s").format(received))
    return sql.SQL("{} WHERE {}").format(query, sql.SQL(" AND ").join(conditions))


def _normalize(frame: pl.DataFrame, mapping: SqlMapping) -> pl.DataFrame:
    """Cast to :data:`SQL_EVENT_SCHEMA`, fill defaults, and number rows in arrival order."""
    columns = []
    for name, dtype in SQL_EVENT_SCHEMA.items():
        if name == "arrival":
            continue
        if name in frame.columns:
            col = pl.col(name).cast(dtype)
        else:
            col = pl.lit(None, dtype=dtype).alias(name)
        if name == "delivery_count":
            col = col.fill_null(1)
        columns.append(col)
    order = "arrival" if "arrival" in mapping.columns else "received_at"
    keys = [order, "_row"] if order in frame.columns else ["_row"]
    out = (
        frame.with_row_index("_row")
        .sort(keys, nulls_last=True)
        .select(*columns, arrival=pl.int_range(pl.len(), dtype=pl.Int64))
    )
    return out.select(list(SQL_EVENT_SCHEMA))


def read_sql_events(
    url: str,
    *,
    password_env: str | None,
    mapping: SqlMapping,
    since: datetime | None = None,
    until: datetime | None = None,
) -> pl.DataFrame:
    """Read the integration's webhook events into the normalized model.

    Args:
        url: ``postgresql://USER@HOST:PORT/DBNAME`` (or key=value form), without a password.
        password_env: environment variable holding the password; ``None`` for none (libpq may
            still use ``~/.pgpass``).
        mapping: the table and the integration's column names.
        since: keep events whose mapped ``received_at`` is at or after this aware datetime.
        until: keep events whose mapped ``received_at`` is before this aware datetime.

    Returns:
        A frame with exactly :data:`SQL_EVENT_SCHEMA`, in arrival order (``arrival`` 0, 1, …:
        the mapped ``arrival`` column's order if mapped, else ``received_at`` order, then the
        order the server returned the rows).

    Raises:
        ParameterError: the mapping, URL or bounds are invalid (before connecting).
        MissingSecretError: the variable named by ``password_env`` is unset.
        EventSourceError: connecting or reading failed; the message names the database, the
            problem and the fix (never the password).
    """
    mapping.validate()
    target = _target(url)
    problems = _check_bound("since", since) + _check_bound("until", until)
    if (since is not None or until is not None) and "received_at" not in mapping.columns:
        problems.append("since/until filter on received_at: map columns.received_at first.")
    if not problems and since is not None and until is not None and since >= until:
        problems.append(f"since ({since.isoformat()}) must be before until ({until.isoformat()}).")
    if problems:
        raise ParameterError("invalid time window for the SQL event source:", problems=problems)

    password = secret_from_env(password_env, purpose="database password") if password_env else None
    query = _select(mapping, since, until)
    params: dict[str, Any] = {"since": since, "until": until}

    failure: tuple[str, str, str] | None = None
    chunks: list[pl.DataFrame] = []
    wire = {model: _wire_dtype(model) for model in mapping.columns}
    # Errors are turned into our own after the except block, so psycopg's exception (whose
    # connection repr includes the password) is not even chained as __context__.
    try:
        conn = psycopg.connect(
            url,
            password=password.reveal() if password else None,
            connect_timeout=10,
            application_name="redcloud-runbook",
        )
    except psycopg.Error as exc:
        failure = _connect_problem(str(exc), target, has_password=password is not None)
    if failure is not None:
        code, problem, fix = failure
        raise EventSourceError(f"cannot connect to {target}: {problem}.", code=code, remedy=fix)

    try:
        with conn:
            conn.read_only = True
            conn.execute("SET TIME ZONE 'UTC'")  # timestamp-without-zone columns are read as UTC
            with conn.cursor(name="runbook_events") as cursor:
                cursor.execute(query, params)
                while rows := cursor.fetchmany(_CHUNK_ROWS):
                    chunks.append(pl.DataFrame(rows, schema=wire, orient="row"))
    except psycopg.Error as exc:
        problem, fix = _query_problem(exc, mapping)
        failure = ("db_query_failed", problem, fix)
    finally:
        conn.close()
    if failure is not None:
        code, problem, fix = failure
        raise EventSourceError(f"{target}: {problem}", code=code, remedy=fix)

    frame = pl.concat(chunks) if chunks else pl.DataFrame(schema=wire)
    for required in REQUIRED_COLUMNS:
        missing = frame.get_column(required).null_count()
        if missing:
            raise EventSourceError(
                f"{target}: {missing} row(s) of {mapping.table!r} have no "
                f"{required} (column {mapping.columns[required]!r}).",
                code="db_invalid_rows",
                remedy=f"map columns.{required} to a column that is never null, or fix those rows.",
            )
    return _normalize(frame, mapping)


class SqlSource:
    """The integration's own table as an event source (parameters: ``event_source`` kind ``sql``)."""

    name = "sql"

    def __init__(
        self, url: str, *, password_env: str | None, mapping: SqlMapping, provider: Any = None
    ) -> None:
        self.url, self.password_env, self.mapping = url, password_env, mapping
        self.provider = provider  # whose wire names the table may hold (None: the default's)

    @classmethod
    def from_parameters(cls, params: Any, *, provider: Any = None) -> SqlSource:
        mapping = SqlMapping(table=params.table, columns=dict(params.columns))
        return cls(params.url, password_env=params.password_env, mapping=mapping, provider=provider)

    def load(self, *, since: datetime | None = None, until: datetime | None = None) -> pl.DataFrame:
        """The window's rows in the model; the provider's wire names (an Onyx delivery type
        without its status) brought to the model's (``ExportFormat.model``)."""
        from ..providers.base import as_provider

        frame = read_sql_events(
            self.url, password_env=self.password_env, mapping=self.mapping, since=since, until=until
        )
        return (
            as_provider(self.provider)
            .export_format()
            .model(frame.lazy())
            .select(list(SQL_EVENT_SCHEMA))
            .collect()
        )

    def events_for(
        self,
        *,
        message_id: str | None = None,
        external_reference: str | None = None,
        conversation_id: str | None = None,
    ) -> list[WebhookEvent]:
        """Reads the table and keeps one journey's events (no SQL text is ever built from input)."""
        wanted = [
            pl.col(column) == value
            for column, value in correlation(
                message_id=message_id,
                external_reference=external_reference,
                conversation_id=conversation_id,
            )
        ]
        return events_from_frame(self.load().filter(pl.any_horizontal(wanted)))
