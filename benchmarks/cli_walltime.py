"""The commands people run most, timed as whole processes, against baselines from the same run.

Baselines: the bare interpreter (``python -c pass``: what any command costs) and papermill's own
CLI executing an empty notebook (kernel start and bookkeeping: what a notebook run costs at least).
Targets (issue 15): ``runbook --help`` and ``runbook reports`` within 0.5 s; ``runbook go-live``
on the sandbox within papermill's empty notebook + 4 s (the outage drill included); ``runbook
trace`` within papermill's empty notebook + 1 s. Medians of a few rounds on this machine.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROUNDS = 3
BIN = Path(sys.executable).parent


def _seconds(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             ok: tuple[int, ...] = (0,)) -> float:  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def _median(argv: list[str], **kwargs: object) -> float:
    return statistics.median(_seconds(argv, **kwargs) for _ in range(ROUNDS))  # type: ignore[arg-type]


def _empty_notebook(folder: Path) -> Path:
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    path = folder / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def main() -> None:
    from tests.stack import running_stack

    runbook = str(BIN / "runbook")
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        folder = Path(tmp)
        python = _median([sys.executable, "-c", "pass"])
        empty = _empty_notebook(folder)
        papermill = _median(
            [str(BIN / "papermill"), str(empty), str(folder / "out.ipynb"), "-k", "python3",
             "--no-progress-bar"], cwd=folder,
        )  # fmt: skip
        help_s = _median([runbook, "--help"], cwd=folder)
        with running_stack(folder) as stack:
            params = stack.params()
            env = {**os.environ, **stack.env}
            golive = [
                _seconds([runbook, "go-live", "--params", str(params), "--new-run"], env=env,
                         cwd=folder)
                for _ in range(ROUNDS)
            ]  # fmt: skip
            reports = _median([runbook, "reports"], cwd=folder)
            summary = next((folder / "reports").rglob("summary.json"))
            import json

            message_id = json.loads(summary.read_text())["messages"][0]["messageId"]
            trace = _median(
                [runbook, "trace", "--params", str(params), "--message-id", message_id],
                env=env, cwd=folder,
            )  # fmt: skip
    golive_s = statistics.median(golive)
    print(f"CLI wall time, whole processes, median of {ROUNDS} rounds (same run)")
    print(f"  python -c pass (baseline)        : {python:6.2f} s")
    print(f"  papermill, empty notebook (base) : {papermill:6.2f} s")
    print(f"  runbook --help                   : {help_s:6.2f} s  = {help_s / python:5.1f}x python"
          f"  (target <= 0.5 s: {'met' if help_s <= 0.5 else 'NOT met'})")  # fmt: skip
    print(f"  runbook reports                  : {reports:6.2f} s  = {reports / python:5.1f}x python"
          f"  (target <= 0.5 s: {'met' if reports <= 0.5 else 'NOT met'})")  # fmt: skip
    print(f"  runbook go-live (sandbox)        : {golive_s:6.2f} s  = {golive_s / papermill:5.2f}x"
          f" papermill, {golive_s - papermill:+.2f} s (target <= +4 s: "
          f"{'met' if golive_s - papermill <= 4 else 'NOT met'})")  # fmt: skip
    print(f"  runbook trace                    : {trace:6.2f} s  = {trace / papermill:5.2f}x"
          f" papermill, {trace - papermill:+.2f} s (target <= +1 s: "
          f"{'met' if trace - papermill <= 1 else 'NOT met'})")  # fmt: skip


if __name__ == "__main__":
    main()
