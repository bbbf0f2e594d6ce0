"""An incident audit of ~5 M events, end to end (papermill, report, HTML, leak guard, index).

The window is the lifecycle benchmark's 5 M-event synthetic day as a Parquet export; the audit's
context step talks to a live sandbox. Baselines in the same run: papermill executing an empty
notebook (kernel start and bookkeeping) and the engine alone on the same file.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from .golive_walltime import _empty_notebook_seconds

MESSAGES = 1_600_000


def main() -> None:
    from runbook_lib.cli import run_read_only
    from runbook_lib.core.lifecycle_table import audit_lifecycles
    from runbook_lib.providers.redcloud.sandbox.synthetic import synthetic_events
    from runbook_lib.sources import ParquetSource
    from tests.stack import running_stack

    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        folder = Path(tmp)
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=25)
        window = synthetic_events(MESSAGES, start=start)
        export = folder / "events.parquet"
        window.events.write_parquet(export)
        events = window.events.height
        del window
        baseline = _empty_notebook_seconds(folder)
        t0 = time.perf_counter()
        audit_lifecycles(ParquetSource(export).scan())
        engine = time.perf_counter() - t0
        with running_stack(folder) as stack:
            params = yaml.safe_load(stack.params().read_text())
            params["event_source"] = {"kind": "parquet", "path": str(export)}
            path = folder / "audit.yaml"
            path.write_text(yaml.safe_dump(params))
            t0 = time.perf_counter()
            run = run_read_only(
                "audit", path, reports_root=folder / "reports", extra_env=stack.env,
                notebook_parameters={"since": "", "window_from": start.isoformat(),
                                     "window_to": (start + timedelta(hours=26)).isoformat()},
            )  # fmt: skip
            wall = time.perf_counter() - t0
    if run.exit_code not in (0, 1):
        raise SystemExit(f"the audit did not complete: {run.summary.error}")
    domain = run.summary.failure_domain_name
    print(f"incident audit of {events:,} events end to end (report included): {wall:.1f} s")
    print(
        f"  papermill, empty notebook : {baseline:6.2f} s  → audit = {wall / baseline:.1f}x baseline"
    )
    print(f"  lifecycle engine alone    : {engine:6.2f} s  → audit = {wall / engine:.1f}x engine")
    print(f"  outcome {run.summary.outcome} (failure domain: {domain})")


if __name__ == "__main__":
    main()
