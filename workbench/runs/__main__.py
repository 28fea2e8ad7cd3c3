"""Command line: sweeps on Dask and the run database, the same code path as the Sweeps panel
(`python -m workbench ...` or `python -m workbench.runs ...`).

    python -m workbench sweep SPEC.toml [--scheduler ADDRESS] [--db PATH] [--workers N]
    python -m workbench runs [list] [--experiment NAME] [--sweep ID] [--limit N] [--db PATH]
    python -m workbench runs sweeps [--db PATH]
    python -m workbench runs export OUT.csv|OUT.parquet [--experiment NAME] [--sweep ID] [--db PATH]
    python -m workbench runs export-run RUN_ID OUT.json [--db PATH]
    python -m workbench runs import RUN.json [--experiment NAME] [--db PATH]
    python -m workbench runs fit [--sweep ID] [--metric NAME] [--axis FIELD] [--resamples N] [--level P]
                                 [--guess L] [--db PATH]
    python -m workbench runs fits [--sweep ID] [--db PATH]

`runs fit` fits L(n) = a n^-alpha + c to a metric of a sweep's runs (default: the newest sweep, test_loss, the grid's
one field) with bootstrap intervals and Hestness et al.'s three regions, prints it and stores it with the sweep;
`runs fits` lists the stored fits.

A sweep spec (TOML):

    experiment = "teacher_fit"          # a module of workbench.experiments, or an importable module name
    seeds = [0, 1]                      # optional: the Config's seed field (then no seed in [grid])
    zip = false                         # true: zip the value lists instead of their product
    [base]                              # fixed fields
    steps = 30
    [grid]                              # a list, or a range {from, to, n, log}
    width = [64, 128, 256, 512]
    lr = {from = 0.00048828125, to = 0.0625, n = 8, log = true}

Errors are one line (`error: ...`, exit status 2); Ctrl-C is one line too (exit status 130): the points that
ended are in the database, and the same command resumes. Reading commands open the database read-only and
create nothing.
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
from typing import Any

from workbench.core.experiment import Record, progress_text

SPEC_KEYS = ("experiment", "seeds", "zip", "base", "grid")
READING = ("list", "sweeps", "export", "export-run", "fit", "fits")  # actions that open the database read-only
# (`runs fit` reads read-only, so a mistyped --db creates nothing, and opens a writer only to store its fit)


def spec_arguments(spec: object) -> dict[str, Any]:
    """`workbench.runs.sweep.run`'s arguments from a parsed sweep file: every key checked (and every point built),
    a ValueError naming the first key that is wrong."""
    from workbench.runs import sweep

    if not isinstance(spec, dict):
        raise ValueError(f"spec: must be a table of {', '.join(SPEC_KEYS)}, got {type(spec).__name__}")
    unknown, missing = sorted(set(spec) - set(SPEC_KEYS)), [k for k in ("experiment", "grid") if k not in spec]
    if unknown or missing:
        raise ValueError(
            f"spec: needs experiment and [grid], may have seeds, zip, [base]; missing {missing}, unknown {unknown}"
        )
    module = sweep.experiment_module(spec["experiment"])
    for key in ("base", "grid"):
        if not isinstance(spec.get(key, {}), dict):
            raise ValueError(f"{key}: must be a table ([{key}] and field = value lines), got {spec[key]!r:.80}")
    try:
        base = module.Config.from_dict(spec.get("base", {}))
    except (ValueError, TypeError) as err:
        raise ValueError(f"base: {err}") from None
    grid = {}
    for name, axis in spec["grid"].items():
        try:
            grid[name] = sweep.values(axis)
        except ValueError as err:
            raise ValueError(f"grid: {name}: {str(err).removeprefix('grid: ')}") from None
    seeds, zip_ = spec.get("seeds"), spec.get("zip", False)
    sweep.grid_configs(base, grid, seeds, zip_)  # every key and point checked before anything connects
    return dict(experiment=module, base_config=base, grid=grid, seeds=seeds, zip=zip_)


def load_spec(path: str) -> dict:
    """The sweep of a TOML spec as `workbench.runs.sweep.run`'s arguments (experiment, base config, grid, ...)."""
    try:
        spec = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ValueError(f"spec: cannot read {path} ({err})") from None
    return spec_arguments(spec)


def point_line(record: Record) -> str:
    """One line per point: progress, grid values, outcome, scalar results, ETA."""
    m = record.metrics
    fields = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in m["fields"].items())
    result = " ".join(f"{k}={v:.4g}" for k, v in m["result"].items() if isinstance(v, float))
    eta = "" if math.isnan(m["eta"]) or record.done == record.total else f"  (about {m['eta']:.0f} s left)"
    outcome = "already in the database" if m["skipped"] else m["outcome"]
    error = f": {m['error']}" if m.get("error") else ""
    return f"{progress_text(record):>14}  {fields}  {outcome}{error}  {result}{eta}"


def workers(text: str) -> int:
    """--workers: a whole number of local worker processes, refused at once otherwise (-1 waited in silence)."""
    from workbench.runs.cluster import check_workers

    try:
        return check_workers(int(text) if text.lstrip("-").isdigit() else text) or 0
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("workers: ")) from None


def sweep_command(args: argparse.Namespace) -> int:
    from workbench.runs import cluster, sweep

    kwargs = load_spec(args.spec)  # refused here, before connecting or writing anything
    if args.scheduler:
        print(f"connecting to {args.scheduler} ...", flush=True)
        client, own = cluster.connect(args.scheduler), True
    else:
        print(f"starting a local cluster of {args.workers or 'one per CPU'} worker processes ...", flush=True)
        client, own = cluster.local_client(args.workers), False
    print(f"dashboard: {client.dashboard_link or 'none'}", flush=True)
    failed = 0
    try:
        for record in sweep.run(**kwargs, client=client, db=args.db):
            if record.kind == "point":
                print(point_line(record), flush=True)
            elif record.kind == "status" and record.status == "running":
                left = record.total - record.done
                print(f"started {left} point(s) ({record.done} already in the database); waiting for the first to "
                      "end (a queued cluster job waits here too)", flush=True)  # fmt: skip
            elif record.kind == "summary":
                m = record.metrics
                failed = m["failed"]
                print(
                    f"sweep {m['sweep_id']}: ran {m['ran']}, skipped {m['skipped']} (already finished), failed {failed}"
                )
    finally:
        if own:
            client.close()
    return 1 if failed else 0


def _when(seconds: object) -> str:
    """A run's time as local date and time ('?' for a value that is not a time)."""
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and 0 <= seconds < 1e11:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
    return "?"


def runs_command(args: argparse.Namespace) -> int:
    from workbench.runs.rundb import RunDB

    db = RunDB(args.db, readonly=args.action in READING)
    filters = dict(experiment=args.experiment, sweep_id=args.sweep)
    if args.action == "list":
        for r in db.runs(**filters, limit=args.limit):
            print(f"{r['id']:>6}  {r['experiment']}  {r['status']:<9} seed={r['seed']}  ended={_when(r['ended'])}  "
                  f"{r['label']}")  # fmt: skip
        for line in db.skipped:
            print(f"skipped {line}", file=sys.stderr)
    elif args.action == "sweeps":
        for s in db.sweeps():
            errors = f" ({s['errors']} errors)" if s["errors"] else ""
            print(f"{s['id']:>4}  {s['experiment']}  {s['runs']} runs{errors}  grid={json.dumps(s['grid'])}")
    elif args.action == "export":
        print(db.export(_arg(args, 0, "OUT.csv or OUT.parquet"), **filters))
    elif args.action == "export-run":
        text = _arg(args, 0, "RUN_ID")
        if not text.isdigit():
            raise ValueError(f"runs export-run: RUN_ID must be a run's number, got {text!r}")
        out = Path(_arg(args, 1, "OUT.json"))
        out.write_text(json.dumps(db.export_run(int(text)), allow_nan=False))
        print(out)
    elif args.action == "fit":
        from workbench.runs.scaling import fit_sweep, summary

        kwargs = dict(metric=args.metric, axis=args.axis, level=args.level, resamples=args.resamples, guess=args.guess)
        fit, points = fit_sweep(db, args.sweep, **kwargs)
        print(summary(fit, points))
        print(f"stored with sweep {points.sweep_id} in {db.path}")
    elif args.action == "fits":
        for f in db.fits(args.sweep):
            try:
                fit, (lo, hi) = f["fit"], f["fit"]["intervals"]["alpha"]
                law = f"a={fit['a']:.4g} alpha={fit['alpha']:.4g} [{lo:.4g}, {hi:.4g}] c={fit['c']:.4g}"
                runs = len(fit["runs"])
            except (KeyError, TypeError, ValueError) as err:  # a garbled row is skipped and said, the rest listed
                print(f"skipped the fit of sweep {f['sweep_id']} ({f['metric']}): unreadable ({err!r:.80})",
                      file=sys.stderr)  # fmt: skip
                continue
            print(f"{f['sweep_id']:>4}  {f['metric']} against {f['axis']}: {law}  ({runs} runs, "
                  f"{_when(f['created'])})")  # fmt: skip
    elif args.action == "import":
        run_id, skipped = db.import_run(_arg(args, 0, "RUN.json"), experiment=args.experiment)
        said = (
            f"already in the database as run {run_id}; nothing imported" if db.already else f"imported as run {run_id}"
        )
        print(said + (f" ({skipped} unreadable lines or records skipped)" if skipped else ""))
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
    s.add_argument("--scheduler", help="Dask scheduler address, e.g. tcp://host:8786 (default: a local cluster)")
    s.add_argument("--workers", type=workers, help="worker processes of the local cluster (default: one per CPU)")
    s.add_argument(
        "--db", help="run database (default: $WORKBENCH_DB or ~/.local/share/wide-deep-workbench/runs.sqlite)"
    )
    r = sub.add_parser("runs", help="list, export, import or fit runs of the run database")
    actions = ("list", "sweeps", "export", "export-run", "import", "fit", "fits")
    r.add_argument("action", nargs="?", default="list", choices=actions)
    r.add_argument("paths", nargs="*", help="export: OUT; export-run: RUN_ID OUT; import: FILE")
    r.add_argument("--experiment")
    r.add_argument("--sweep", type=int)
    r.add_argument("--limit", type=int, default=50)
    r.add_argument("--db")
    r.add_argument("--metric", default="test_loss", help="fit: the metric (default: test_loss)")
    r.add_argument("--axis", help="fit: the config field, e.g. n_train or width (default: the grid's one field)")
    r.add_argument("--resamples", type=int, default=1000, help="fit: bootstrap resamples (default: 1000)")
    r.add_argument("--level", type=float, default=0.95, help="fit: confidence level of the intervals (default: 0.95)")
    r.add_argument("--guess", type=float, help="fit: best-guess error bounding the small-data region")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; its exit status (0 done, 1 some point failed, 2 refused, 130 interrupted)."""
    try:
        from workbench.runs.rundb import RunDBError

        args = parser().parse_args(argv)
        try:
            return sweep_command(args) if args.command == "sweep" else runs_command(args)
        except (ValueError, ConnectionError, RunDBError, OSError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:
        print("interrupted: the points that ended are in the run database; the same command resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
