"""Wall time of a whole ``go-live`` run on the sandbox, against papermill running an empty notebook.

The baseline (kernel start + papermill bookkeeping for one trivial cell) is measured in the same
run, so the ratio says what the runbook itself adds on this machine.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import nbformat

ROUNDS = 3


def _empty_notebook_seconds(folder: Path) -> float:
    import papermill

    from runbook_lib.reporting.kernels import PrivateKernels

    source = folder / "empty.ipynb"
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.metadata["tags"] = ["parameters"]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), source)
    kernels = PrivateKernels()  # the same kernel manager and socket folder a report uses
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(folder / "empty-out.ipynb"),
            kernel_name="python3",
            progress_bar=False,
            kernel_manager_class=kernels.manager_class(),
        )
        return time.perf_counter() - started
    finally:
        kernels.close()


def _go_live_seconds(folder: Path, round_no: int) -> float:
    from runbook_lib.cli import run_go_live
    from tests.stack import running_stack

    work = folder / f"golive-{round_no}"
    work.mkdir()
    with running_stack(work) as stack:
        params = stack.params()
        started = time.perf_counter()
        run = run_go_live(params, reports_root=work / "reports", new_run=True, extra_env=stack.env)
        elapsed = time.perf_counter() - started
    if run.exit_code != 0:
        raise SystemExit(f"go-live did not pass in the benchmark: {run.summary['outcome']}")
    return elapsed


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        baseline = [_empty_notebook_seconds(folder) for _ in range(ROUNDS)]
        golive = [_go_live_seconds(folder, i) for i in range(ROUNDS)]
    base, run = statistics.median(baseline), statistics.median(golive)
    print("go-live wall time on the sandbox (lifecycle delay 0), median of", ROUNDS, "rounds")
    print(f"  papermill, empty notebook : {base:6.2f} s  (baseline)")
    print(f"  runbook go-live           : {run:6.2f} s  = {run / base:.2f}x baseline")


if __name__ == "__main__":
    main()
