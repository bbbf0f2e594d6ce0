"""The commands people run most, timed as whole processes, against baselines from the same run.

Baselines: the bare interpreter (``python -c pass``: what any command costs) and papermill's own
CLI executing an empty notebook (kernel start and bookkeeping: what a notebook run costs at least).
Targets (issue 15): ``runbook --help`` and ``runbook reports`` within 0.5 s; ``runbook go-live``
on the sandbox within papermill's empty notebook + 4 s, with the shipped 2 s webhook outage drill
(``parameters/sandbox.yaml``); ``runbook trace`` within papermill's empty notebook + 1 s.

The machine is shared, so its load drifts during a run: each round times every command once, in
turn (baseline, go-live, trace, ...), and each figure is the median over ``ROUNDS`` rounds. The
deltas compare medians taken under the same drift. ``CLI_BENCH_ROUNDS`` overrides the rounds.

``CLI_BENCH_BEFORE=<folder>`` (a checkout of another commit, e.g. ``git archive <commit> | tar -x
-C <folder>``) also times go-live and trace with that folder's ``runbook_lib`` and notebooks
(first on ``PYTHONPATH``, kernel included) in the same rounds: a before/after under equal load.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROUNDS = int(os.environ.get("CLI_BENCH_ROUNDS", "5"))
BIN = Path(sys.executable).parent
OUTAGE_SECONDS = 2.0  # the shipped drill (parameters/sandbox.yaml), not the test stack's 0.3 s


def _seconds(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
             ok: tuple[int, ...] = (0,)) -> float:  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}: {done.stderr[-500:]}")
    return elapsed


def _empty_notebook(folder: Path) -> Path:
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    path = folder / "empty.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def _verdict(measured: float, target: float) -> str:
    return "PASS" if measured <= target else "MISS"


def main() -> None:
    from tests.stack import running_stack

    runbook = str(BIN / "runbook")
    before = os.environ.get("CLI_BENCH_BEFORE")
    names = ["python", "papermill", "help", "reports", "go-live", "trace"]
    if before:
        names += ["go-live before", "trace before"]
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="cli-bench-") as tmp:
        folder = Path(tmp)
        empty = _empty_notebook(folder)
        papermill = [str(BIN / "papermill"), str(empty), str(folder / "out.ipynb"), "-k",
                     "python3", "--no-progress-bar"]  # fmt: skip
        with running_stack(folder) as stack:
            params = stack.params(drills={"enabled": True, "outage_seconds": OUTAGE_SECONDS})
            env = {**os.environ, **stack.env}
            env_before = {**env, "PYTHONPATH": str(before),
                          "RUNBOOK_NOTEBOOKS": str(Path(before or ".") / "notebooks")}  # fmt: skip
            golive = [runbook, "go-live", "--params", str(params), "--new-run"]
            _seconds(golive, env=env, cwd=folder)  # warm-up: caches, and a message to trace
            summary = next((folder / "reports").rglob("summary.json"))
            message_id = json.loads(summary.read_text())["messages"][0]["messageId"]
            trace = [runbook, "trace", "--params", str(params), "--message-id", message_id]
            for round_no in range(ROUNDS):
                times["python"].append(_seconds([sys.executable, "-c", "pass"]))
                times["papermill"].append(_seconds(papermill, cwd=folder))
                for command, argv in (("go-live", golive), ("trace", trace)):
                    variants = [(command, env)]
                    if before:  # alternating which goes first, so neither gets the quieter slot
                        variants.append((f"{command} before", env_before))
                        variants = variants[:: 1 if round_no % 2 else -1]
                    for name, variant_env in variants:
                        times[name].append(_seconds(argv, env=variant_env, cwd=folder))
                times["help"].append(_seconds([runbook, "--help"], cwd=folder))
                times["reports"].append(_seconds([runbook, "reports"], cwd=folder))
    m = {name: statistics.median(values) for name, values in times.items()}
    base = m["papermill"]
    print(f"CLI wall time, whole processes, median of {ROUNDS} interleaved rounds (same run)")
    print(f"  python -c pass (baseline)        : {m['python']:6.2f} s")
    print(f"  papermill, empty notebook (base) : {base:6.2f} s"
          f"  (rounds: {', '.join(f'{t:.2f}' for t in times['papermill'])})")  # fmt: skip
    print("  command                          : measured        target            verdict")
    for name, label in (("help", "runbook --help"), ("reports", "runbook reports")):
        print(f"  {label:<32} : {m[name]:6.2f} s        <= 0.50 s         "
              f"{_verdict(m[name], 0.5)}")  # fmt: skip
    rows = [("go-live", f"runbook go-live ({OUTAGE_SECONDS:g} s drill)", 4.0),
            ("trace", "runbook trace", 1.0)]  # fmt: skip
    if before:
        rows = [rows[0], ("go-live before", "  same, before", 4.0), rows[1],
                ("trace before", "  same, before", 1.0)]  # fmt: skip
    for name, label, budget in rows:
        delta = m[name] - base
        print(f"  {label:<32} : {m[name]:6.2f} s = base {delta:+.2f} s "
              f"({m[name] / base:.2f}x)  <= base +{budget:g} s  {_verdict(delta, budget)}"
              f"  (rounds: {', '.join(f'{t:.2f}' for t in times[name])})")  # fmt: skip
    if before:  # per round, after minus before: the load both saw cancels out
        for command in ("go-live", "trace"):
            paired = [
                a - b for a, b in zip(times[command], times[f"{command} before"], strict=True)
            ]
            print(f"  {command} after - before, paired   : median {statistics.median(paired):+.2f} s"
                  f"  (rounds: {', '.join(f'{d:+.2f}' for d in paired)})")  # fmt: skip


if __name__ == "__main__":
    main()
