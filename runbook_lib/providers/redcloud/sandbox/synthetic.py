"""Synthetic webhook event windows, for rehearsing audits at scale and for benchmarks.

A window of ``messages`` outbound sends spread over ``hours``: most are delivered, ``failed_rate``
fail, ``stuck_rate`` stop after queued (or sent) and never progress; ``duplicate_rate`` of events
are delivered a second time, ``out_of_order_rate`` of messages see ``message.sent`` arrive before
``message.queued``. Deterministic for a given ``seed``. Columns are the event model
(:data:`runbook_lib.sources.EVENT_SCHEMA`), in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from ..contract import EVENT_STATES

__all__ = ["SyntheticWindow", "synthetic_events"]

FAILURES = (
    ("carrier_rejected", "The carrier rejected the message"),
    ("unreachable", "The destination handset is unreachable"),
    ("blocked", "The destination has opted out"),
)


@dataclass(frozen=True)
class SyntheticWindow:
    """What was generated, so tests and benchmarks can check the audit against it."""

    events: pl.DataFrame
    messages: int
    delivered: int
    failed: int
    stuck: int
    duplicates: int
    out_of_order: int
    start: datetime
    end: datetime


def synthetic_events(
    messages: int,
    *,
    hours: float = 24.0,
    failed_rate: float = 0.10,
    stuck_rate: float = 0.03,
    duplicate_rate: float = 0.05,
    out_of_order_rate: float = 0.02,
    numbers: int = 12,
    start: datetime | None = None,
    seed: int = 7,
) -> SyntheticWindow:
    """Generate the events of ``messages`` sends (about 3.1 events per message at the defaults)."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2026, 11, 23, tzinfo=UTC)
    span_us = int(hours * 3600 * 1e6)
    base = np.datetime64(start.replace(tzinfo=None), "us")
    stuck_cutoff = int(span_us * 0.9)  # stuck messages leave time to be judged stuck
    outcome = rng.random(messages)
    failed = outcome < failed_rate
    stuck = (outcome >= failed_rate) & (outcome < failed_rate + stuck_rate)
    accepted_at = rng.integers(0, span_us, messages)
    accepted_at[stuck] = rng.integers(0, stuck_cutoff, int(stuck.sum()))
    # events per message: queued, sent, then delivery or failed; stuck ones stop early
    count = np.full(messages, 3, dtype=np.int64)
    count[stuck] = rng.integers(1, 3, int(stuck.sum()))
    msg = np.repeat(np.arange(messages), count)
    seq = np.arange(len(msg)) - np.repeat(np.cumsum(count) - count, count) + 1
    kind = np.where(seq == 1, 0, np.where(seq == 2, 1, np.where(failed[msg], 3, 2)))
    step_us = rng.integers(1_000_000, 6_000_000, len(msg))  # time between states
    running = np.cumsum(step_us)
    occurred = (
        accepted_at[msg]
        + running
        - np.repeat(running[np.cumsum(count) - count] - step_us[np.cumsum(count) - count], count)
    )
    latency = rng.integers(20_000, 900_000, len(msg))  # webhook delivery latency, < one step
    received = occurred + latency
    swapped = rng.random(messages) < out_of_order_rate
    late = swapped[msg] & (seq == 1)
    received[late] += 6_000_000  # queued arrives after sent
    dup = rng.random(len(msg)) < duplicate_rate
    dup_index = np.flatnonzero(dup)
    all_index = np.concatenate([np.arange(len(msg)), dup_index])
    all_received = np.concatenate(
        [received, received[dup_index] + rng.integers(1_000_000, 30_000_000, len(dup_index))]
    )
    order = all_index[np.argsort(all_received, kind="stable")]
    received_sorted = np.sort(all_received, kind="stable")
    m, k = msg[order], kind[order]
    failure_pick = rng.integers(0, len(FAILURES), len(order))
    types = np.array(list(EVENT_STATES))  # the contract's mapping, in lifecycle order
    statuses = np.array(list(EVENT_STATES.values()))
    frame = pl.DataFrame(
        {
            "event_index": order,
            "msg": m,
            "event_type": types[k],
            "sequence": seq[order],
            "status": statuses[k],
            "number_n": (m % numbers),
            "occurred_at": base + occurred[order].astype("timedelta64[us]"),
            "received_at": base + received_sorted.astype("timedelta64[us]"),
            "is_failed": k == 3,
            "failure_n": failure_pick,
        }
    )
    codes = {i: c for i, (c, _) in enumerate(FAILURES)}
    reasons = {i: r for i, (_, r) in enumerate(FAILURES)}
    events = frame.select(
        pl.format("evt_{}", pl.col("event_index").cast(pl.Utf8).str.zfill(10)).alias("event_id"),
        "event_type",
        pl.format("msg_{}", pl.col("msg").cast(pl.Utf8).str.zfill(9)).alias("message_id"),
        pl.format("order-{}", pl.col("msg").cast(pl.Utf8).str.zfill(9)).alias("external_reference"),
        pl.lit(None, dtype=pl.Utf8).alias("conversation_id"),
        pl.col("sequence").cast(pl.Int64),
        "status",
        pl.format("num_{}", pl.col("number_n").cast(pl.Utf8).str.zfill(3)).alias("number_id"),
        pl.col("occurred_at").dt.replace_time_zone("UTC"),
        pl.col("received_at").dt.replace_time_zone("UTC"),
        pl.lit(1, dtype=pl.Int32).alias("delivery_count"),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("arrival"),
        pl.when("is_failed")
        .then(pl.col("failure_n").replace_strict(codes, return_dtype=pl.Utf8))
        .alias("failure_code"),
        pl.when("is_failed")
        .then(pl.col("failure_n").replace_strict(reasons, return_dtype=pl.Utf8))
        .alias("failure_reason"),
    )
    return SyntheticWindow(
        events=events,
        messages=messages,
        delivered=int((~failed & ~stuck).sum()),
        failed=int(failed.sum()),
        stuck=int(stuck.sum()),
        duplicates=len(dup_index),
        out_of_order=int(swapped.sum()),
        start=start,
        end=start + timedelta(microseconds=int(received_sorted[-1])) if len(order) else start,
    )
