"""Lifecycle reconstruction in bulk: millions of events to one row per message, columnar.

The same rules as :func:`runbook_lib.lifecycle.reconstruct` (which explains one message event by
event for a trace), applied to whole windows with polars; property tests hold the two to the same
answers. Per message: the state of the highest applied ``sequence``; the first-seen time of each
state; and flags — duplicate deliveries, out-of-order arrivals, regressions refused (a late event
that would have moved the state backwards), sequence gaps, terminal conflicts (delivered and
failed), missing ``message.queued``, stuck (not final, no event for longer than a threshold).
Inbound messages are grouped by ``conversationId``; unknown event types are counted and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from .events import INBOUND_EVENT, OUTBOUND_EVENTS
from .lifecycle import STATE_RANK

__all__ = ["LifecycleTable", "audit_lifecycles"]

FLAG_COLUMNS = (
    "duplicate_deliveries",
    "out_of_order",
    "regressions_refused",
    "sequence_gaps",
    "terminal_conflict",
    "missing_queued",
    "stuck",
)


@dataclass(frozen=True)
class LifecycleTable:
    """One row per outbound message, one per inbound conversation, and what was ignored."""

    messages: pl.DataFrame
    conversations: pl.DataFrame
    unknown_event_types: dict[str, int] = field(default_factory=dict)
    events_total: int = 0
    as_of: datetime | None = None
    stuck_after: timedelta = timedelta(minutes=15)

    def states(self) -> dict[str, int]:
        """Messages per current state (``NONE``: events arrived but none could be applied)."""
        counts = self.messages.group_by("state").len()
        return {(s or "NONE"): int(n) for s, n in counts.iter_rows()}

    def flag_counts(self) -> dict[str, int]:
        """How many messages carry each flag."""
        if self.messages.height == 0:
            return dict.fromkeys(FLAG_COLUMNS, 0)
        row = self.messages.select(
            [(pl.col(c).cast(pl.Int64) > 0).sum().alias(c) for c in FLAG_COLUMNS]
        ).row(0, named=True)
        return {k: int(v) for k, v in row.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "eventsTotal": self.events_total,
            "messages": self.messages.height,
            "conversations": self.conversations.height,
            "states": self.states(),
            "flags": self.flag_counts(),
            "unknownEventTypes": self.unknown_event_types,
        }


def audit_lifecycles(
    events: pl.DataFrame | pl.LazyFrame,
    *,
    as_of: datetime | None = None,
    stuck_after: timedelta = timedelta(minutes=15),
) -> LifecycleTable:
    """Reconstruct every message in ``events`` (the :data:`~runbook_lib.sources.EVENT_SCHEMA` model).

    Args:
        as_of: "now" for the stuck test (default: the latest event received, so an old window
            is judged as of its own end, not of today).
        stuck_after: a message not in a final state with no event for longer than this is stuck.
    """
    lf = events.lazy()
    total = lf.select(pl.len()).collect().item()
    if as_of is None:
        latest = lf.select(pl.col("received_at").max()).collect().item()
        as_of = latest or datetime.now(UTC)
    outbound = lf.filter(
        pl.col("event_type").is_in(OUTBOUND_EVENTS) & pl.col("message_id").is_not_null()
    ).select(
        "event_id", "event_type", "message_id", "external_reference", "number_id", "sequence",
        "received_at", "occurred_at", "delivery_count", "arrival", "failure_code", "failure_reason",
    )  # fmt: skip
    messages = _messages(outbound, as_of=as_of, stuck_after=stuck_after)
    conversations = (
        lf.filter(pl.col("event_type") == INBOUND_EVENT)
        .with_columns(
            pl.coalesce("conversation_id", "message_id", "event_id").alias("conversation_id")
        )
        .group_by("conversation_id")
        .agg(
            pl.col("event_id").n_unique().alias("messages"),
            pl.col("number_id").drop_nulls().first().alias("number_id"),
            pl.col("received_at").min().alias("first_received_at"),
            pl.col("received_at").max().alias("last_received_at"),
        )
        .sort("first_received_at")
    )
    unknown = (
        lf.filter(~pl.col("event_type").is_in([*OUTBOUND_EVENTS, INBOUND_EVENT]))
        .group_by("event_type")
        .len()
    )
    messages_df = messages.collect()
    conversations_df, unknown_df = pl.collect_all([conversations, unknown])
    return LifecycleTable(
        messages=messages_df,
        conversations=conversations_df,
        unknown_event_types={t: int(n) for t, n in unknown_df.iter_rows()},
        events_total=int(total),
        as_of=as_of,
        stuck_after=stuck_after,
    )


_STATE_CODE = {"message.queued": 0, "message.sent": 1, "message.delivery": 2, "message.failed": 3}
_STATES = ("QUEUED", "SENT", "DELIVERED", "FAILED")
_RANK_BY_CODE = np.array([STATE_RANK[s] for s in _STATES], dtype=np.int8)
_NO_TIME_MIN, _NO_TIME_MAX = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _group_starts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of runs of equal ``keys`` (sorted), and each row's run number."""
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    return np.flatnonzero(new), np.cumsum(new) - 1


def _segment_first(mask: np.ndarray, starts: np.ndarray, gid: np.ndarray) -> np.ndarray:
    """Per group, the row index of the first row where ``mask`` holds (-1 when none)."""
    n = len(mask)
    first = np.minimum.reduceat(np.where(mask, np.arange(n), n), starts)
    return np.where(first < n, first, -1)


def _segment_last(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.maximum.reduceat(np.where(mask, np.arange(len(mask)), -1), starts)


def _take(series: pl.Series, index: np.ndarray) -> pl.Series:
    """``series[index]`` with -1 meaning null."""
    valid = index >= 0
    taken = series.gather(np.where(valid, index, 0))
    return taken.scatter(np.flatnonzero(~valid), None) if not valid.all() else taken


def _first_in_group(keys: np.ndarray, gid: np.ndarray, longest: int) -> np.ndarray:
    """True where ``keys`` did not occur earlier in the same group (rows grouped, in arrival order)."""
    if longest > 64:  # pathological groups: hash the pairs instead of comparing neighbours
        pairs = pl.DataFrame({"g": gid, "k": keys})
        return pairs.select(pl.struct("g", "k").is_first_distinct()).to_series().to_numpy()
    first = np.ones(len(keys), dtype=bool)
    for lag in range(1, longest):
        same = (keys[lag:] == keys[:-lag]) & (gid[lag:] == gid[:-lag])
        first[lag:] &= ~same
    return first


def _grouping(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row order grouping each message's rows in arrival order; group starts; group per row."""
    arrival = frame["arrival"].to_numpy()
    in_arrival_order = bool(np.all(arrival[1:] > arrival[:-1]))
    primary = frame["_h1"].to_numpy()
    order = (
        np.argsort(primary, kind="stable") if in_arrival_order else np.lexsort((arrival, primary))
    )
    starts, gid = _group_starts(primary[order])
    check = frame["_h2"].to_numpy()[order]
    if np.array_equal(check, check[starts][gid]):  # two independent hashes agree: no collision
        return order, starts, gid
    exact = frame["message_id"].rank("dense").to_numpy()
    order = np.lexsort((arrival, exact))
    starts, gid = _group_starts(exact[order])
    return order, starts, gid


def _messages(outbound: pl.LazyFrame, *, as_of: datetime, stuck_after: timedelta) -> pl.LazyFrame:
    frame = outbound.with_columns(
        pl.col("message_id").hash(seed=1).alias("_h1"),
        pl.col("message_id").hash(seed=2).alias("_h2"),
        pl.col("event_id").hash(seed=3).alias("_eh"),
    ).collect()
    if frame.height == 0:
        return pl.LazyFrame(schema=_MESSAGE_SCHEMA)
    order, starts, gid = _grouping(frame)
    groups = len(starts)
    sizes = np.diff(np.append(starts, len(order)))
    longest = int(sizes.max())
    event_key = frame["_eh"].to_numpy()[order]
    seq_all = frame["sequence"].fill_null(0).to_numpy()[order]
    state_all = (
        frame["event_type"].replace_strict(_STATE_CODE, return_dtype=pl.Int8).to_numpy()[order]
    )
    received_all = frame["received_at"].dt.epoch("us").fill_null(_NO_TIME_MIN).to_numpy()[order]
    extra = np.clip(frame["delivery_count"].fill_null(1).to_numpy().astype(np.int64) - 1, 0, None)
    redelivered = np.add.reduceat(extra[order], starts)

    # Retried deliveries of one event id count once: the first arrival stands.
    keep = _first_in_group(event_key, gid, longest)
    u_rows = order[keep]  # original row numbers, grouped, arrival order
    u_gid, u_state, u_received = gid[keep], state_all[keep], received_all[keep]
    u_starts, _ = _group_starts(u_gid)
    first_of_state = [_segment_first(u_state == code, u_starts, u_gid) for code in range(4)]
    first_event = np.minimum.reduceat(u_received, u_starts)
    last_event = np.maximum.reduceat(
        np.where(u_received == _NO_TIME_MIN, _NO_TIME_MAX, u_received), u_starts
    )
    has_reference = frame["external_reference"].is_not_null().to_numpy()[u_rows]
    has_number = frame["number_id"].is_not_null().to_numpy()[u_rows]
    reference = _segment_first(has_reference, u_starts, u_gid)
    number = _segment_first(has_number, u_starts, u_gid)

    # Another event id with a sequence already seen is a provider-side duplicate: not applied.
    u_seq = seq_all[keep]
    keep_seq = _first_in_group(u_seq, u_gid, longest)
    s_rows, s_gid, seq, state = (
        u_rows[keep_seq],
        u_gid[keep_seq],
        u_seq[keep_seq],
        u_state[keep_seq],
    )
    s_starts, _ = _group_starts(s_gid)
    rank = _RANK_BY_CODE[state]
    span = int(seq.max()) + 2
    offset = s_gid.astype(np.int64) * span
    running = np.maximum.accumulate(offset + seq)
    previous = np.empty_like(running)
    previous[:1] = -1
    previous[1:] = running[:-1]
    applied = seq > np.maximum(previous - offset, 0)
    last_applied = np.maximum.accumulate(np.where(applied, np.arange(len(seq)), -1))
    anchor = np.maximum(last_applied, 0)
    current_rank = np.where((last_applied >= 0) & (s_gid[anchor] == s_gid), rank[anchor], 0)
    highest = np.maximum.reduceat(seq, s_starts)
    top_rows = np.flatnonzero(seq == highest[s_gid])
    top_state = np.full(groups, 4, dtype=np.int64)
    top_state[s_gid[top_rows]] = state[top_rows]
    top_state[highest <= 0] = 4
    below_top = np.add.reduceat(((seq >= 1) & (seq < highest[s_gid])).astype(np.int64), s_starts)
    failed_row = _segment_last(state == 3, s_starts)

    def rows_of(index: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(index >= 0, rows[np.maximum(index, 0)], -1)

    def times(values: np.ndarray, missing: int) -> pl.Series:
        series = pl.Series(np.where(values == missing, 0, values)).cast(pl.Datetime("us"))
        series = series.dt.replace_time_zone("UTC")
        gaps = np.flatnonzero(values == missing)
        return series.scatter(gaps, None) if len(gaps) else series

    received = frame["received_at"]
    u_sizes = np.diff(np.append(u_starts, len(u_rows)))
    s_sizes = np.diff(np.append(s_starts, len(s_rows)))
    has = [index >= 0 for index in first_of_state]
    state_names = np.array([*_STATES, None], dtype=object)
    cutoff = int((as_of - stuck_after).timestamp() * 1_000_000)
    failed_rows = rows_of(failed_row, s_rows)
    messages = pl.DataFrame(
        {
            "message_id": frame["message_id"].gather(order[starts]),
            "external_reference": _take(frame["external_reference"], rows_of(reference, u_rows)),
            "number_id": _take(frame["number_id"], rows_of(number, u_rows)),
            "state": pl.Series(state_names[top_state], dtype=pl.Utf8),
            "highest_sequence": highest.astype(np.int64),
            "queued_at": _take(received, rows_of(first_of_state[0], u_rows)),
            "sent_at": _take(received, rows_of(first_of_state[1], u_rows)),
            "delivered_at": _take(received, rows_of(first_of_state[2], u_rows)),
            "failed_at": _take(received, rows_of(first_of_state[3], u_rows)),
            "first_event_at": times(first_event, _NO_TIME_MIN),
            "last_event_at": times(last_event, _NO_TIME_MAX),
            "failure_code": _take(frame["failure_code"], failed_rows),
            "failure_reason": _take(frame["failure_reason"], failed_rows),
            "duplicate_deliveries": redelivered + (sizes - u_sizes) + (u_sizes - s_sizes),
            "out_of_order": np.add.reduceat((~applied).astype(np.int64), s_starts),
            "regressions_refused": np.add.reduceat(
                (~applied & (rank < current_rank)).astype(np.int64), s_starts
            ),
            "sequence_gaps": np.clip(highest - 1 - below_top, 0, None).astype(np.int64),
            "terminal_conflict": has[2] & has[3],
            "missing_queued": ~has[0],
            "stuck": ~np.isin(top_state, (2, 3))
            & (last_event != _NO_TIME_MAX)
            & (last_event < cutoff),
        }
    )
    return messages.lazy()


_MESSAGE_SCHEMA = {
    "message_id": pl.Utf8, "external_reference": pl.Utf8, "number_id": pl.Utf8, "state": pl.Utf8,
    "highest_sequence": pl.Int64, **{f"{s}_at": pl.Datetime("us", "UTC") for s in
    ("queued", "sent", "delivered", "failed", "first_event", "last_event")},
    "failure_code": pl.Utf8, "failure_reason": pl.Utf8, "duplicate_deliveries": pl.Int64,
    "out_of_order": pl.Int64, "regressions_refused": pl.Int64, "sequence_gaps": pl.Int64,
    "terminal_conflict": pl.Boolean, "missing_queued": pl.Boolean, "stuck": pl.Boolean,
}  # fmt: skip
