"""Run every benchmark: ``python -m benchmarks`` (or ``make bench``)."""

from __future__ import annotations

import sys

from . import audit_walltime, cli_walltime, golive_walltime, lifecycle_audit, receiver_throughput

BENCHMARKS = {
    "audit": audit_walltime.main,
    "cli": cli_walltime.main,
    "golive": golive_walltime.main,
    "lifecycle": lifecycle_audit.main,
    "receiver": receiver_throughput.main,
}


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
        return 3
    for name in chosen:
        BENCHMARKS[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
