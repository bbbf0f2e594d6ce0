"""Lifecycle audit of 1 M and 5 M synthetic events: the runbook's engine against two baselines.

(a) a reference DuckDB SQL query and (b) a straightforward pandas implementation compute the
same per-message table (state by highest sequence, first-seen times, every flag) from the same
Parquet file, each in its own process so its peak memory (VmHWM) is its own. Wall time is
the median of ``ROUNDS``; ratios are printed against both baselines. Targets: engine time at or
below DuckDB's, at least 3x faster than pandas, peak at most 1 GB.

Also importable: :func:`duckdb_audit` is the SQL reference a test holds the engine to.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROUNDS = 3
SIZES = {"1M": 320_000, "5M": 1_600_000}  # messages; about 3.1 events each

DUCKDB_SQL = """
WITH ev AS (
    SELECT event_id, message_id, external_reference, number_id, arrival, received_at,
           coalesce(sequence, 0) AS seq, greatest(coalesce(delivery_count, 1) - 1, 0) AS extra,
           CASE event_type WHEN 'message.queued' THEN 'QUEUED' WHEN 'message.sent' THEN 'SENT'
                WHEN 'message.delivery' THEN 'DELIVERED' ELSE 'FAILED' END AS state,
           failure_code, failure_reason
    FROM read_parquet($path)
    WHERE event_type IN ('message.queued', 'message.sent', 'message.delivery', 'message.failed')
      AND message_id IS NOT NULL
),
counted AS (SELECT message_id, count(*) AS n_rows, sum(extra) AS redelivered FROM ev GROUP BY 1),
uniq AS (
    SELECT * FROM ev QUALIFY row_number() OVER (PARTITION BY message_id, event_id ORDER BY arrival) = 1
),
seen AS (
    SELECT message_id, count(*) AS n_unique,
           arg_min(external_reference, arrival) FILTER (WHERE external_reference IS NOT NULL) AS external_reference,
           arg_min(number_id, arrival) FILTER (WHERE number_id IS NOT NULL) AS number_id,
           arg_min(received_at, arrival) FILTER (WHERE state = 'QUEUED') AS queued_at,
           arg_min(received_at, arrival) FILTER (WHERE state = 'SENT') AS sent_at,
           arg_min(received_at, arrival) FILTER (WHERE state = 'DELIVERED') AS delivered_at,
           arg_min(received_at, arrival) FILTER (WHERE state = 'FAILED') AS failed_at,
           bool_or(state = 'QUEUED') AS has_queued, bool_or(state = 'DELIVERED') AS has_delivered,
           bool_or(state = 'FAILED') AS has_failed,
           min(received_at) AS first_event_at, max(received_at) AS last_event_at
    FROM uniq GROUP BY 1
),
by_seq AS (
    SELECT * FROM uniq QUALIFY row_number() OVER (PARTITION BY message_id, seq ORDER BY arrival) = 1
),
judged AS (
    SELECT *, seq > coalesce(max(seq) OVER w_before, 0) AS applied,
           CASE state WHEN 'QUEUED' THEN 1 WHEN 'SENT' THEN 2 ELSE 3 END AS rank
    FROM by_seq
    WINDOW w_before AS (PARTITION BY message_id ORDER BY arrival ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
),
ranked AS (
    SELECT *, coalesce(last_value(CASE WHEN applied THEN rank END IGNORE NULLS) OVER (
        PARTITION BY message_id ORDER BY arrival ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), 0) AS current_rank
    FROM judged
),
agg AS (
    SELECT message_id, count(*) AS n_seq, max(seq) AS highest_sequence, arg_max(state, seq) AS top_state,
           count(*) FILTER (WHERE NOT applied) AS out_of_order,
           count(*) FILTER (WHERE NOT applied AND rank < current_rank) AS regressions_refused,
           count(*) FILTER (WHERE seq >= 1) AS positive,
           arg_max(failure_code, arrival) FILTER (WHERE state = 'FAILED') AS failure_code,
           arg_max(failure_reason, arrival) FILTER (WHERE state = 'FAILED') AS failure_reason
    FROM ranked GROUP BY 1
)
SELECT a.message_id, s.external_reference, s.number_id,
       CASE WHEN a.highest_sequence > 0 THEN a.top_state END AS state, a.highest_sequence,
       s.queued_at, s.sent_at, s.delivered_at, s.failed_at, s.first_event_at, s.last_event_at,
       a.failure_code, a.failure_reason,
       c.redelivered + (c.n_rows - s.n_unique) + (s.n_unique - a.n_seq) AS duplicate_deliveries,
       a.out_of_order, a.regressions_refused,
       greatest(a.highest_sequence - 1 - (a.positive - CASE WHEN a.highest_sequence >= 1 THEN 1 ELSE 0 END), 0) AS sequence_gaps,
       s.has_delivered AND s.has_failed AS terminal_conflict, NOT s.has_queued AS missing_queued,
       (coalesce(a.top_state, '') NOT IN ('DELIVERED', 'FAILED') OR a.highest_sequence <= 0)
           AND s.last_event_at < $cutoff AS stuck
FROM agg a JOIN seen s USING (message_id) JOIN counted c USING (message_id)
"""


def duckdb_audit(path: Path, cutoff):  # noqa: ANN001, ANN201 - benchmark helper
    """The reference SQL audit; returns an Arrow table with the engine's message columns."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con.sql(DUCKDB_SQL, params={"path": str(path), "cutoff": cutoff}).to_arrow_table()


def pandas_audit(path: Path, cutoff):  # noqa: ANN001, ANN201 - benchmark helper
    """The same audit written the straightforward pandas way."""
    import numpy as np
    import pandas as pd

    ev = pd.read_parquet(path)
    ev = ev[
        ev.event_type.isin(["message.queued", "message.sent", "message.delivery", "message.failed"])
        & ev.message_id.notna()
    ]
    ev = ev.assign(
        seq=ev.sequence.fillna(0).astype("int64"),
        state=ev.event_type.map(
            {
                "message.queued": "QUEUED",
                "message.sent": "SENT",
                "message.delivery": "DELIVERED",
                "message.failed": "FAILED",
            }
        ),
        extra=(ev.delivery_count.fillna(1) - 1).clip(lower=0),
    ).sort_values(["message_id", "arrival"])
    counted = ev.groupby("message_id").agg(
        n_rows=("event_id", "size"), redelivered=("extra", "sum")
    )
    uniq = ev.drop_duplicates(["message_id", "event_id"])
    first = uniq.groupby("message_id").agg(
        n_unique=("event_id", "size"),
        external_reference=("external_reference", "first"),
        number_id=("number_id", "first"),
        first_event_at=("received_at", "min"),
        last_event_at=("received_at", "max"),
    )
    for state in ("QUEUED", "SENT", "DELIVERED", "FAILED"):
        first[f"{state.lower()}_at"] = (
            uniq[uniq.state == state].groupby("message_id").received_at.first()
        )
    by_seq = uniq.drop_duplicates(["message_id", "seq"]).copy()
    by_seq["prev_max"] = by_seq.groupby("message_id").seq.cummax()
    by_seq["prev_max"] = by_seq.groupby("message_id").prev_max.shift(1).fillna(0)
    by_seq["applied"] = by_seq.seq > by_seq.prev_max
    by_seq["late"] = ~by_seq.applied
    by_seq["rank"] = by_seq.state.map({"QUEUED": 1, "SENT": 2, "DELIVERED": 3, "FAILED": 3})
    by_seq["current_rank"] = (
        by_seq["rank"].where(by_seq.applied).groupby(by_seq.message_id).ffill().fillna(0)
    )
    by_seq["regression"] = by_seq.late & (by_seq["rank"] < by_seq.current_rank)
    by_seq["positive"] = by_seq.seq >= 1
    top = by_seq.loc[
        by_seq.groupby("message_id").seq.idxmax(), ["message_id", "state", "seq"]
    ].set_index("message_id")
    agg = by_seq.groupby("message_id").agg(
        n_seq=("seq", "size"),
        out_of_order=("late", "sum"),
        regressions_refused=("regression", "sum"),
        positive=("positive", "sum"),
    )
    failed = (
        by_seq[by_seq.state == "FAILED"]
        .groupby("message_id")
        .agg(failure_code=("failure_code", "last"), failure_reason=("failure_reason", "last"))
    )
    out = counted.join(first).join(agg).join(top).join(failed)
    out["state"] = out.state.where(out.seq > 0)
    out["highest_sequence"] = out.seq
    out["duplicate_deliveries"] = (
        out.redelivered + (out.n_rows - out.n_unique) + (out.n_unique - out.n_seq)
    )
    out["sequence_gaps"] = np.maximum(out.seq - 1 - (out.positive - (out.seq >= 1)), 0)
    out["stuck"] = ~out.state.isin(["DELIVERED", "FAILED"]) & (out.last_event_at < cutoff)
    return out  # fmt: skip


def _engine_audit(path: Path, cutoff):  # noqa: ANN001, ANN201 - benchmark helper
    from runbook_lib.core.lifecycle_table import audit_lifecycles
    from runbook_lib.sources import ParquetSource

    table = audit_lifecycles(ParquetSource(path).scan(), as_of=cutoff, stuck_after=timedelta(0))
    return table.messages


IMPLEMENTATIONS = {"engine": _engine_audit, "duckdb": duckdb_audit, "pandas": pandas_audit}


def _peak_rss_mb() -> float:
    """This process's own peak resident memory.

    Not ``ru_maxrss``: Linux carries that across ``execve``, so a child started by this benchmark
    (which has just built the synthetic window) would report the parent's peak when it is larger.
    ``VmHWM`` belongs to the process's own address space.
    """
    with contextlib.suppress(OSError, IndexError, ValueError):
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(name: str, path: str, cutoff_iso: str) -> None:
    """Run one implementation once in this (fresh) process; print seconds, peak MB and rows."""
    from datetime import datetime

    cutoff = datetime.fromisoformat(cutoff_iso)
    started = time.perf_counter()
    result = IMPLEMENTATIONS[name](Path(path), cutoff)
    seconds = time.perf_counter() - started
    rows = len(result) if not hasattr(result, "num_rows") else result.num_rows
    peak = _peak_rss_mb()
    print(json.dumps({"seconds": seconds, "peakMB": peak, "rows": rows}))


def _measure(name: str, path: Path, cutoff_iso: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.lifecycle_audit", "--child", name, str(path), cutoff_iso],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_window(messages: int, folder: Path) -> tuple[Path, str, int]:
    from runbook_lib.providers.redcloud.sandbox.synthetic import synthetic_events

    window = synthetic_events(messages)
    path = folder / f"events-{messages}.parquet"
    window.events.write_parquet(path)
    cutoff = window.end.isoformat()
    return path, cutoff, window.events.height


def main(sizes: list[str] | None = None) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="lifecycle-bench-") as tmp:
        for label in sizes or list(SIZES):
            path, cutoff, events = _write_window(SIZES[label], Path(tmp))
            runs: dict[str, list[dict]] = {name: [] for name in IMPLEMENTATIONS}
            for _ in range(ROUNDS):
                for name in IMPLEMENTATIONS:  # interleaved, so drift hits all three alike
                    runs[name].append(_measure(name, path, cutoff))
            summary = {
                name: {
                    "seconds": statistics.median(r["seconds"] for r in rs),
                    "peakMB": max(r["peakMB"] for r in rs),
                    "rows": rs[0]["rows"],
                }
                for name, rs in runs.items()
            }
            engine, duck, pand = summary["engine"], summary["duckdb"], summary["pandas"]
            print(
                f"lifecycle audit, {events:,} events ({SIZES[label]:,} messages), median of {ROUNDS}:"
            )
            for name, s in summary.items():
                print(
                    f"  {name:7s} {s['seconds']:7.2f} s   peak {s['peakMB']:7.0f} MB   {s['rows']:,} messages"
                )
            print(
                f"  engine / duckdb = {engine['seconds'] / duck['seconds']:.2f}x (target <= 1.00)   "
                f"pandas / engine = {pand['seconds'] / engine['seconds']:.1f}x (target >= 3)   "
                f"engine peak {engine['peakMB']:.0f} MB (target <= 1024)"
            )
            results[label] = summary
    return results


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        os.environ.setdefault("POLARS_MAX_THREADS", str(os.cpu_count() or 2))
        _child(*sys.argv[2:5])
    else:
        main(sys.argv[1:] or None)
