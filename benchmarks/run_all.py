"""Run every benchmark module (benchmarks/bench_*.py) in its own process: `make bench` or
`python -m benchmarks.run_all [--quick]`. Each prints its own table with ratios against its peer."""

from __future__ import annotations

import pathlib
import subprocess
import sys


def main(argv=None):
    extra = sys.argv[1:] if argv is None else argv
    failed = []
    for path in sorted(pathlib.Path(__file__).parent.glob("bench_*.py")):
        print(f"\n=== {path.stem} ===", flush=True)
        if subprocess.run([sys.executable, "-m", f"benchmarks.{path.stem}", *extra]).returncode:
            failed.append(path.stem)
    if failed:
        sys.exit(f"benchmarks failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
