"""Lifecycle reconstruction in bulk: millions of events to one row per message, columnar.

The same rules as :func:`runbook_lib.lifecycle.reconstruct` (which explains one message event by
event for a trace), applied to whole windows with polars; property tests hold the two to the same
answers. Per message: the state of the highest applied ``sequence`` — or, when the provider orders
by rank or none of the message's events carries a sequence, the state of the highest-ranked event
(the provider's ranks, :meth:`LifecycleModel.rank`; FAILED is final); the first-seen time of each
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

from .allocator import release_free_heap
from .lifecycle import STATES, LifecycleModel, default_model

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
    model: LifecycleModel | None = None,
) -> LifecycleTable:
    """Reconstruct every message in ``events`` (the :data:`~runbook_lib.sources.EVENT_SCHEMA` model).

    Args:
        as_of: "now" for the stuck test (default: the latest event received, so an old window
            is judged as of its own end, not of today).
        stuck_after: a message not in a final state with no event for longer than this is stuck.
        model: the provider's lifecycle model (the default provider's when None).
    """
    model = model or default_model()
    outbound_events, inbound_events = list(model.outbound_events), sorted(model.inbound_events)
    lf = events.lazy()
    total = lf.select(pl.len()).collect().item()
    if as_of is None:
        latest = lf.select(pl.col("received_at").max()).collect().item()
        as_of = latest or datetime.now(UTC)
    outbound = lf.filter(
        pl.col("event_type").is_in(outbound_events) & pl.col("message_id").is_not_null()
    ).select(
        "event_id", "event_type", "message_id", "external_reference", "number_id", "sequence",
        "received_at", "occurred_at", "delivery_count", "arrival", "failure_code", "failure_reason",
    )  # fmt: skip
    conversations = (
        lf.filter(pl.col("event_type").is_in(inbound_events))
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
        lf.filter(~pl.col("event_type").is_in([*outbound_events, *inbound_events]))
        .group_by("event_type")
        .len()
    )
    # Before the messages: what these reads hold is then free again when the big arrays exist.
    conversations_df, unknown_df = pl.collect_all([conversations, unknown], engine="streaming")
    messages_df = _messages(
        outbound, rows=int(total), as_of=as_of, stuck_after=stuck_after, model=model
    )
    return LifecycleTable(
        messages=messages_df,
        conversations=conversations_df,
        unknown_event_types={t: int(n) for t, n in unknown_df.iter_rows()},
        events_total=int(total),
        as_of=as_of,
        stuck_after=stuck_after,
    )


_STATES = STATES  # a state's code is its index here
_FAILED = _STATES.index("FAILED")
_NO_TIME_MIN, _NO_TIME_MAX = np.iinfo(np.int64).max, np.iinfo(np.int64).min


def _state_code(model: LifecycleModel) -> pl.Expr:
    """event_type → 0..3 (the state's index in STATES), from the provider's model. A when/then
    chain, not replace_strict: that one stops the streaming engine, and the ids' text would then
    be read whole instead of batch by batch."""
    codes = [(t, _STATES.index(s)) for t, s in model.state_by_event.items()]
    expr = pl.when(pl.col("event_type") == codes[0][0]).then(pl.lit(codes[0][1], dtype=pl.Int8))
    for event_type, code in codes[1:]:
        expr = expr.when(pl.col("event_type") == event_type).then(pl.lit(code, dtype=pl.Int8))
    return expr.otherwise(None)


def _rank(model: LifecycleModel) -> pl.Expr:
    """event_type → the provider's rank for it (:meth:`LifecycleModel.rank`), as a when/then chain."""
    ranks = [(t, model.rank(t)) for t in model.state_by_event]
    expr = pl.when(pl.col("event_type") == ranks[0][0]).then(pl.lit(ranks[0][1], dtype=pl.Int16))
    for event_type, rank in ranks[1:]:
        expr = expr.when(pl.col("event_type") == event_type).then(pl.lit(rank, dtype=pl.Int16))
    return expr.otherwise(0)


def _group_starts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets of runs of equal ``keys`` (sorted), and each row's run number."""
    new = np.empty(len(keys), dtype=bool)
    new[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=new[1:])
    return np.flatnonzero(new), np.cumsum(new) - 1


def _segment_first(mask: np.ndarray, starts: np.ndarray) -> np.ndarray:
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


def _grouping(cols: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Row order grouping each message's rows in arrival order; group starts; group per row.

    None when two message ids share the first hash (the second, independent hash disagrees).
    """
    arrival, primary = cols["arrival"], cols["_h1"]
    in_arrival_order = bool(np.all(arrival[1:] > arrival[:-1]))
    order = (
        np.argsort(primary, kind="stable") if in_arrival_order else np.lexsort((arrival, primary))
    )
    starts, gid = _group_starts(primary[order])
    check = cols["_h2"][order]
    if not np.array_equal(check, check[starts][gid]):
        return None
    return order, starts, gid


PARTITION_ROWS = 1_000_000  # events per partition: bounds the engine's working memory
_TEXT_ROWS = ("message_row", "reference_row", "number_row", "failed_row")


def _messages(
    outbound: pl.LazyFrame,
    *,
    rows: int,
    as_of: datetime,
    stuck_after: timedelta,
    model: LifecycleModel,
) -> pl.DataFrame:
    """One row per message. Only numbers are held for every event (hashes of the ids, codes,
    epochs); messages are worked in partitions by hash (all of a message's events share one), and
    each text column is read once at the end, just for the rows the result needs."""
    keys = outbound.select(
        pl.col("message_id").hash(seed=1).alias("_h1"),
        pl.col("message_id").hash(seed=2).alias("_h2"),
        pl.col("event_id").hash(seed=3).alias("_eh"),
        pl.col("sequence").fill_null(0).alias("_seq"),
        _state_code(model).alias("_state"),
        _rank(model).alias("_rank"),
        pl.col("sequence").is_not_null().alias("_has_seq"),
        pl.col("received_at").dt.epoch("us").fill_null(_NO_TIME_MIN).alias("_received"),
        pl.col("delivery_count").fill_null(1).cast(pl.Int32).alias("_deliveries"),
        "arrival",
        pl.col("external_reference").is_not_null().alias("_has_reference"),
        pl.col("number_id").is_not_null().alias("_has_number"),
    ).collect(engine="streaming")
    if keys.height == 0:
        return pl.DataFrame(schema=_MESSAGE_SCHEMA)
    # One contiguous buffer per column, which numpy then reads in place instead of copying;
    # column by column, so the chunked frame and its contiguous copy never coexist in full.
    cols = {name: keys.drop_in_place(name).rechunk().to_numpy() for name in list(keys.columns)}
    del keys

    def text(name: str) -> pl.Series:
        return outbound.select(name).collect(engine="streaming").to_series()

    parts = max(1, -(-len(cols["arrival"]) // PARTITION_ROWS))
    bucket = cols["_h1"] % np.uint64(parts)
    pieces = []
    for n in range(parts):
        rows_n = np.flatnonzero(bucket == n) if parts > 1 else np.arange(len(bucket))
        part = {name: values[rows_n] for name, values in cols.items()} if parts > 1 else cols
        grouping = _grouping(part)
        if grouping is None:  # a hash collision: group by the exact ids instead (slow, exact)
            exact = text("message_id").rank("dense").to_numpy()[rows_n]
            order = np.lexsort((part["arrival"], exact))
            starts, gid = _group_starts(exact[order])
            grouping = (order, starts, gid)
        piece = _partition(part, grouping, rank_only=model.ordered_by == "rank")
        for name in _TEXT_ROWS:  # partition-local row numbers → the frame's row numbers
            local = piece[name]
            piece[name] = np.where(local >= 0, rows_n[np.maximum(local, 0)], -1)
        pieces.append(piece)
        release_free_heap()  # the partition's temporaries, before the next one's
    del cols, bucket
    # Popped as they are joined, so the pieces and the merged arrays never coexist in full.
    merged = {name: np.concatenate([p.pop(name) for p in pieces]) for name in list(pieces[0])}
    del pieces
    release_free_heap()

    def times(name: str, values: np.ndarray, missing: int) -> pl.Series:
        series = pl.Series(name, np.where(values == missing, 0, values)).cast(pl.Datetime("us"))
        series = series.dt.replace_time_zone("UTC")
        gaps = np.flatnonzero(values == missing)
        return series.scatter(gaps, None) if len(gaps) else series

    # Each array is popped as its column is made, so the numbers and the frame never coexist.
    top_state, last_event = merged["top_state"], merged["last_event"]
    cutoff = int((as_of - stuck_after).timestamp() * 1_000_000)
    stuck = ~np.isin(top_state, (2, 3)) & (last_event != _NO_TIME_MAX) & (last_event < cutoff)
    del top_state, last_event
    failed_row = merged.pop("failed_row")
    columns = [
        text("message_id").gather(merged.pop("message_row")),
        _take(text("external_reference"), merged.pop("reference_row")),
        _take(text("number_id"), merged.pop("number_row")),
        pl.Series("state", np.array([*_STATES, None], dtype=object)[merged.pop("top_state")],
                  dtype=pl.Utf8),
        pl.Series("highest_sequence", merged.pop("highest").astype(np.int64)),
    ]  # fmt: skip
    for column, state in (("queued_at", 0), ("sent_at", 1), ("delivered_at", 2), ("failed_at", 3)):
        columns.append(times(column, merged.pop(f"first_{state}"), _NO_TIME_MIN))
    columns.append(times("first_event_at", merged.pop("first_event"), _NO_TIME_MIN))
    columns.append(times("last_event_at", merged.pop("last_event"), _NO_TIME_MAX))
    columns.append(_take(text("failure_code"), failed_row))
    columns.append(_take(text("failure_reason"), failed_row))
    for column in ("duplicate_deliveries", "out_of_order", "regressions_refused", "sequence_gaps"):
        columns.append(pl.Series(column, merged.pop(column)))
    columns.append(
        pl.Series("terminal_conflict", merged.pop("has_delivered") & merged.pop("has_failed"))
    )
    # a provider whose acceptance is the queued state sends no queued event to miss
    has_queued = merged.pop("has_queued")
    columns.append(pl.Series("missing_queued", ~has_queued & (not model.queued_on_acceptance)))
    columns.append(pl.Series("stuck", stuck))
    return pl.DataFrame(columns)


def _partition(
    cols: dict[str, np.ndarray],
    grouping: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    rank_only: bool,
) -> dict[str, np.ndarray]:
    """The per-message numbers of one partition; ``*_row`` are partition row numbers (-1: none).

    ``rank_only``: the provider orders by rank; otherwise a message is ordered by rank only when
    none of its events carries a sequence (:meth:`LifecycleModel.by_rank`).
    """
    order, starts, gid = grouping
    groups = len(starts)
    sizes = np.diff(np.append(starts, len(order)))
    longest = int(sizes.max())
    redelivered = np.add.reduceat(
        np.clip(cols["_deliveries"][order].astype(np.int64) - 1, 0, None), starts
    )
    by_rank = (
        np.ones(groups, dtype=bool)
        if rank_only
        else ~np.logical_or.reduceat(cols["_has_seq"][order], starts)
    )

    # Retried deliveries of one event id count once: the first arrival stands.
    keep = _first_in_group(cols["_eh"][order], gid, longest)
    u_rows = order[keep]  # partition row numbers, grouped, arrival order
    del order
    u_gid = gid[keep]
    del gid, keep
    u_state = cols["_state"][u_rows]
    u_received = cols["_received"][u_rows]
    u_starts, _ = _group_starts(u_gid)
    first_of_state = [_segment_first(u_state == code, u_starts) for code in range(4)]
    out: dict[str, np.ndarray] = {}
    for code, index in enumerate(first_of_state):
        out[f"first_{code}"] = np.where(index >= 0, u_received[np.maximum(index, 0)], _NO_TIME_MIN)
    out["has_queued"], out["has_delivered"], out["has_failed"] = (
        first_of_state[0] >= 0, first_of_state[2] >= 0, first_of_state[3] >= 0,
    )  # fmt: skip
    out["first_event"] = np.minimum.reduceat(u_received, u_starts)
    out["last_event"] = np.maximum.reduceat(
        np.where(u_received == _NO_TIME_MIN, _NO_TIME_MAX, u_received), u_starts
    )
    del u_received

    def rows_of(index: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return np.where(index >= 0, rows[np.maximum(index, 0)], -1)

    out["reference_row"] = rows_of(_segment_first(cols["_has_reference"][u_rows], u_starts), u_rows)
    out["number_row"] = rows_of(_segment_first(cols["_has_number"][u_rows], u_starts), u_rows)
    out["message_row"] = u_rows[u_starts]

    # Another event id with a sequence already seen is a provider-side duplicate: not applied.
    # (Ranked messages have no sequence to compare: every event id is applied or judged.)
    u_seq = cols["_seq"][u_rows]
    keep_seq = _first_in_group(u_seq, u_gid, longest) | by_rank[u_gid]
    s_rows, s_gid, seq, state = (
        u_rows[keep_seq],
        u_gid[keep_seq],
        u_seq[keep_seq],
        u_state[keep_seq],
    )
    rank = cols["_rank"][s_rows].astype(np.int64)
    u_count = len(u_rows)
    del u_seq, u_state, u_gid, u_rows, keep_seq
    s_starts, _ = _group_starts(s_gid)
    ranked = by_rank[s_gid]
    seq = np.where(ranked, 0, seq)
    # The ordering key: the sequence, or for a ranked message its event's rank.
    key = np.where(ranked, rank, seq)
    span = int(key.max()) + 2
    offset = s_gid.astype(np.int64) * span
    running = np.maximum.accumulate(offset + key)
    previous = np.empty_like(running)
    previous[:1] = -1
    previous[1:] = running[:-1]
    applied = key > np.maximum(previous - offset, 0)
    del running, previous, offset, key
    # Ranked, FAILED is final: nothing after the first applied FAILED is applied.
    first_failed = _segment_first(applied & ranked & (state == _FAILED), s_starts)[s_gid]
    applied &= ~((first_failed >= 0) & (np.arange(len(seq)) > first_failed))
    last_applied = np.maximum.accumulate(np.where(applied, np.arange(len(seq)), -1))
    anchor = np.maximum(last_applied, 0)
    current = (last_applied >= 0) & (s_gid[anchor] == s_gid)
    current_rank = np.where(current, rank[anchor], 0)
    off_failed = ranked & current & (state[anchor] == _FAILED) & (rank > current_rank)
    del anchor
    highest = np.maximum.reduceat(seq, s_starts)
    top_rows = np.flatnonzero(seq == highest[s_gid])
    top_state = np.full(groups, 4, dtype=np.int64)
    top_state[s_gid[top_rows]] = state[top_rows]
    top_state[highest <= 0] = 4
    last_row = _segment_last(applied, s_starts)
    top_state = np.where(by_rank, np.where(last_row >= 0, state[np.maximum(last_row, 0)], 4),
                         top_state)  # fmt: skip
    below_top = np.add.reduceat(((seq >= 1) & (seq < highest[s_gid])).astype(np.int64), s_starts)
    out["failed_row"] = rows_of(_segment_last(state == 3, s_starts), s_rows)
    u_sizes = np.diff(np.append(u_starts, u_count))
    s_sizes = np.diff(np.append(s_starts, len(s_rows)))
    out["top_state"] = top_state
    out["highest"] = highest
    out["duplicate_deliveries"] = redelivered + (sizes - u_sizes) + (u_sizes - s_sizes)
    out["out_of_order"] = np.add.reduceat((~applied).astype(np.int64), s_starts)
    out["regressions_refused"] = np.add.reduceat(
        (~applied & ((rank < current_rank) | off_failed)).astype(np.int64), s_starts
    )
    out["sequence_gaps"] = np.clip(highest - 1 - below_top, 0, None).astype(np.int64)
    return out


_MESSAGE_SCHEMA = {
    "message_id": pl.Utf8, "external_reference": pl.Utf8, "number_id": pl.Utf8, "state": pl.Utf8,
    "highest_sequence": pl.Int64, **{f"{s}_at": pl.Datetime("us", "UTC") for s in
    ("queued", "sent", "delivered", "failed", "first_event", "last_event")},
    "failure_code": pl.Utf8, "failure_reason": pl.Utf8, "duplicate_deliveries": pl.Int64,
    "out_of_order": pl.Int64, "regressions_refused": pl.Int64, "sequence_gaps": pl.Int64,
    "terminal_conflict": pl.Boolean, "missing_queued": pl.Boolean, "stuck": pl.Boolean,
}  # fmt: skip
