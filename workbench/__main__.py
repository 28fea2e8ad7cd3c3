"""Command line: sweeps on Dask and the run database, the same code path as the Sweeps panel.

    python -m workbench sweep SPEC.toml [--scheduler ADDRESS] [--db PATH] [--workers N]
    python -m workbench runs [list] [--experiment NAME] [--sweep ID] [--limit N] [--db PATH]
    python -m workbench runs sweeps [--db PATH]
    python -m workbench runs export OUT.csv|OUT.parquet [--experiment NAME] [--sweep ID] [--db PATH]
    python -m workbench runs export-run RUN_ID OUT.json [--db PATH]
    python -m workbench runs import RUN.json [--experiment NAME] [--db PATH]

A sweep spec (TOML):

    experiment = "teacher_fit"          # a module of workbench.experiments, or a dotted path
    seeds = [0, 1]                      # optional: the Config's seed field
    zip = false                         # true: zip the value lists instead of their product
    [base]                              # fixed fields
    steps = 30
    [grid]                              # a list, or a range {from, to, n, log}
    width = [64, 128, 256, 512]
    lr = {from = 0.00048828125, to = 0.0625, n = 8, log = true}
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path

from workbench.core.experiment import Record, progress_text


def load_spec(path: str) -> dict:
    """The sweep of a TOML spec as `workbench.runs.sweep.run`'s arguments (experiment, base config, grid, ...)."""
    from workbench.runs import sweep

    try:
        spec = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"spec: cannot read {path} ({err})") from None
    unknown = set(spec) - {"experiment", "seeds", "zip", "base", "grid"}
    if unknown or "experiment" not in spec or "grid" not in spec:
        raise ValueError(f"spec: needs 'experiment' and [grid], may have seeds, zip, [base]; unknown {sorted(unknown)}")
    module = sweep.experiment_module(spec["experiment"])
    base = module.Config.from_dict(spec.get("base", {}))
    grid = {name: sweep.values(v) for name, v in spec["grid"].items()}
    return dict(experiment=module, base_config=base, grid=grid, seeds=spec.get("seeds"), zip=spec.get("zip", False))


def point_line(record: Record) -> str:
    """One line per point: progress, grid values, outcome, scalar results, ETA."""
    m = record.metrics
    fields = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m["fields"].items())
    result = " ".join(f"{k}={v:.4g}" for k, v in m["result"].items() if isinstance(v, float))
    eta = "" if math.isnan(m["eta"]) else f"  (about {m['eta']:.0f} s left)"
    outcome = "already in the database" if m["skipped"] else m["outcome"]
    return f"{progress_text(record):>14}  {fields}  {outcome}  {result}{m.get('error', '')}{eta}"


def sweep_command(args: argparse.Namespace) -> int:
    from workbench.runs import sweep

    kwargs = load_spec(args.spec)
    client = args.scheduler or (sweep.local_client(args.workers) if args.workers else None)
    shown, failed = False, 0
    for record in sweep.run(**kwargs, client=client, db=args.db):
        if record.kind == "point" and not shown:
            print(f"dashboard: {record.metrics['dashboard'] or 'none'}", flush=True)
            shown = True
        if record.kind == "point":
            print(point_line(record), flush=True)
        elif record.kind == "summary":
            m = record.metrics
            failed = m["failed"]
            print(f"sweep {m['sweep_id']}: ran {m['ran']}, skipped {m['skipped']} (already finished), failed {failed}")
    return 1 if failed else 0


def runs_command(args: argparse.Namespace) -> int:
    from workbench.runs.rundb import RunDB

    db = RunDB(args.db)
    filters = dict(experiment=args.experiment, sweep_id=args.sweep)
    if args.action == "list":
        for r in db.runs(**filters, limit=args.limit):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["ended"]))
            print(f"{r['id']:>6}  {r['experiment']}  {r['status']:<9} seed={r['seed']}  ended={when}  {r['label']}")
    elif args.action == "sweeps":
        for s in db.sweeps():
            print(f"{s['id']:>4}  {s['experiment']}  {s['runs']} runs  grid={json.dumps(s['grid'])}")
    elif args.action == "export":
        print(db.export(_arg(args, 0, "OUT.csv or OUT.parquet"), **filters))
    elif args.action == "export-run":
        run_id, out = int(_arg(args, 0, "RUN_ID")), Path(_arg(args, 1, "OUT.json"))
        out.write_text(json.dumps(db.export_run(run_id), allow_nan=False))
        print(out)
    elif args.action == "import":
        run_id, skipped = db.import_run(_arg(args, 0, "RUN.json"), experiment=args.experiment)
        print(f"imported as run {run_id}" + (f" ({skipped} unreadable lines or records skipped)" if skipped else ""))
    return 0


def _arg(args: argparse.Namespace, i: int, what: str) -> str:
    if len(args.paths) <= i:
        raise ValueError(f"runs {args.action}: give {what}")
    return args.paths[i]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sweep", help="run a sweep spec (TOML) on Dask, results into the run database")
    s.add_argument("spec")
    s.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster of worker processes)")
    s.add_argument("--workers", type=int, help="worker processes of the local cluster (default: one per CPU)")
    s.add_argument(
        "--db", help="run database (default: $WORKBENCH_DB or ~/.local/share/wide-deep-workbench/runs.sqlite)"
    )
    r = sub.add_parser("runs", help="list, export or import runs of the run database")
    r.add_argument("action", nargs="?", default="list", choices=("list", "sweeps", "export", "export-run", "import"))
    r.add_argument("paths", nargs="*", help="export: OUT; export-run: RUN_ID OUT; import: FILE")
    r.add_argument("--experiment")
    r.add_argument("--sweep", type=int)
    r.add_argument("--limit", type=int, default=50)
    r.add_argument("--db")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from workbench.runs.rundb import RunDBError

    args = parser().parse_args(argv)
    try:
        return sweep_command(args) if args.command == "sweep" else runs_command(args)
    except (ValueError, ConnectionError, RunDBError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
