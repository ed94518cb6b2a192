"""The command line: a superset of the original ``bucket_rollouts_by_difficulty.py`` flags."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .dataset import NOT_JSONL, Dataset, Progress, load
from .errors import BadLineError, BucketingError, OneLineParser
from .join import Join, check_join_flags, join, match_lines, parse_join_on
from .manifest import build_manifest, read_manifest
from .metrics import MAX_K, METRICS, Params, get_metric
from .outputs import MANIFEST, check_output_dir, output_folders
from .parquet_read import NOT_PARQUET, is_parquet
from .plan import (
    MAX_BUCKETS,
    PRESETS,
    TIES,
    Plan,
    check_name,
    cut_lines,
    percentile_names,
    percentile_plan,
    plan_from_manifest,
    threshold_plan,
)
from .progress import ProgressBar
from .recipes import TRAINERS, check_trainers
from .recipes import main as print_recipes
from .scorepath import ScorePath
from .sources import DEFAULT_MAX_LINE_BYTES, check_globs, display, is_uri
from .split import check_fraction
from .trainset import Source, find_source
from .version import __version__
from .wording import counted, human_bytes
from .writer import ORDERS, check_free, export

RULE = "=" * 60
PR_SET_THP_DISABLE = 41  # prctl(2): no transparent huge pages for this process and its children
EXAMPLES = """\
examples:
  # 3 buckets by mean reward: easy.jsonl (highest means) .. hard.jsonl
  %(prog)s -i ./rollouts -o ./bucketed -m mean_reward -n 3
  # 5 buckets by unbiased pass@4 at a pass threshold of 1.0
  %(prog)s -i ./rollouts -o ./bucketed -m pass_at_k --k 4 --pass-threshold 1.0 -n 5
  # fixed thresholds: <= 0.3, (0.3, 0.7], > 0.7
  %(prog)s -i ./rollouts -o ./bucketed --thresholds 0.3 0.7 --bucket-names low medium high
  # apply the cut points of an earlier run to the next step's rollouts
  %(prog)s -i ./step_200 -o ./bucketed_200 --from-manifest ./bucketed/manifest.json
  # the app, in your browser, on a folder of rollouts (see: %(prog)s app --help)
  %(prog)s app ./rollouts
  # curriculum stages, and the verl settings that train on them in order (see: %(prog)s recipe --help)
  %(prog)s -i ./rollouts -o ./curriculum --cumulative --recipe verl

metrics (per rollout, over its responses' scores):
{metrics}
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    metrics = "\n".join(f"  {m.name:<13} {m.direction:<16} {m.description}" for m in METRICS.values())
    parser = OneLineParser(
        prog=prog,
        description="Bucket JSONL rollouts by difficulty for curriculum learning, cleaning and stratified splits.",
        epilog=EXAMPLES.format(metrics=metrics.replace("%", "%%")),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--version", action="version", version=f"rollout-bucketer {__version__}")
    add(
        "-i",
        "--input-dir",
        required=True,
        help="directory of *.jsonl / *.jsonl.gz / *.jsonl.zst / *.parquet files (recursive)",
    )
    add("-o", "--output-dir", help="where to write the bucket files (required unless --dry-run)")
    add(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out the files whose path relative to -i (or a folder on it) matches GLOB, e.g. 'drafts/*' or "
        "'*.tmp.jsonl' (* also matches /); repeatable",
    )
    add(
        "-m",
        "--metric",
        choices=list(METRICS),
        metavar="METRIC",
        help="difficulty metric, one of those listed below (default: mean_reward)",
    )
    add("-n", "--num-buckets", type=int, help=f"number of percentile buckets (default: 3; at most {MAX_BUCKETS})")
    add(
        "--bucket-names",
        nargs="+",
        metavar="NAME",
        help="bucket names: easiest first with -n, ascending values with --thresholds",
    )
    add(
        "--thresholds",
        nargs="+",
        type=float,
        metavar="T",
        help="fixed cut points instead of percentiles (overrides -n)",
    )
    add(
        "--preset",
        choices=list(PRESETS),
        help="learnability: solved / learnable / unsolved by success rate at the "
        "pass threshold (instead of -m, -n, --thresholds)",
    )
    add(
        "--cumulative",
        action="store_true",
        help="also write cumulative/{prefix}{name}.jsonl: that bucket and every easier one (curriculum stages)",
    )
    add(
        "--val-fraction",
        type=float,
        metavar="F",
        help="split each bucket once into train/ and val/ (F of each bucket to val), the same on every run",
    )
    add(
        "--seed", type=int, default=0, metavar="N", help="with --val-fraction: another seed, another split (default: 0)"
    )
    add("--prefix", default="", help="prefix for every output file name")
    add("--k", type=int, help=f"k of pass_at_k (default: 1; at most {MAX_K}: k > n uses k = n)")
    add("--pass-threshold", type=float, metavar="T", help="a response passes when its score >= this (default: 0.5)")
    add("--ties", choices=TIES, help="keep: equal values share a bucket (default); split: exactly equal sizes")
    add("--order", choices=ORDERS, default="input", help="line order inside each bucket file (default: input)")
    add(
        "--scores",
        metavar="PATH",
        nargs="+",
        help="where each line's scores are, e.g. reward[].score, rewards[0], '[\"mean/reward\"]'; several paths: "
        "a response's score is their sum (default: detected)",
    )
    add(
        "--score-weights",
        metavar="W",
        nargs="+",
        type=float,
        help="with several --scores paths: the weight of each in the sum (the trainer's reward weights)",
    )
    add(
        "--group-by",
        metavar="FIELD[,FIELD]",
        help="lines with equal values of these fields are one rollout, across files (e.g. input; step,input)",
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace an earlier export in the output directory (its files this run doesn't write are removed)",
    )
    add(
        "--no-fsync",
        dest="fsync",
        action="store_false",
        help="don't flush each file to the disk before renaming it (faster; a power cut could then lose data)",
    )
    add("--strict", action="store_true", help="stop with exit 1 at the first bad line instead of skipping it")
    add("--dry-run", action="store_true", help="print statistics, the plan and every metric's spread; write nothing")
    add("--json", action="store_true", help="print the summary (the manifest) as one JSON object on stdout")
    add("--from-manifest", metavar="FILE", help="apply the metric, params, cut points and names of a saved manifest")
    add(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="N",
        help="skip longer lines (default: 64 MiB)",
    )
    add("--workers", type=int, metavar="N", help="processes for reading (default: one per core on large inputs)")
    add(
        "--engine",
        choices=list(ENGINES),
        default="local",
        help="local: this machine (default); ray: a Ray cluster through Ray Data (pip install -r requirements-cluster.txt)",
    )
    add(
        "--ray-address",
        metavar="ADDRESS",
        help="with --engine ray: the cluster to join (auto, ray://host:port); default: start Ray on this machine",
    )
    add(
        "--single-file",
        action="store_true",
        help="with --engine ray: one {prefix}{name}.jsonl per bucket instead of a folder of part files",
    )
    add(
        "--recipe",
        action="append",
        default=[],
        metavar="TRAINER",
        help=f"after the export, print and write {{prefix}}recipe-TRAINER.md: the settings that train {', '.join(TRAINERS)} "
        "on the files written, easiest first (repeatable, or a comma list)",
    )
    add(
        "--train-set",
        metavar="SOURCE",
        help="the prompt dataset the rollouts came from (a parquet or JSONL file, or a folder of them): write each "
        "bucket's rows of it to train_set/ (needs --join-on)",
    )
    add(
        "--join-on",
        metavar="FIELD[=FIELD]",
        help="with --train-set: the rollout field that names a source row, and the source's field if it is named "
        "otherwise (extra_info.index, prompt, num=extra_info.index)",
    )
    add(
        "--annotate",
        metavar="FIELD",
        help="with --train-set: add FIELD (e.g. extra_info.difficulty) = {pass_rate, mean_reward, n, bucket, metric, "
        "value} to every matched source row; JSONL lines that get it are re-serialised (the only lines not copied "
        "byte for byte)",
    )
    add(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module or .py file first (e.g. one that calls bucketing.register_metric)",
    )
    return parser


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["app"]:  # `bucketing app [DIR]`: the app, served by Streamlit
            from .app_launcher import main as open_app

            return open_app(argv[1:], prog=f"{prog or Path(sys.argv[0]).name} app")
        if argv[:1] == ["recipe"]:  # `bucketing recipe TRAINER OUTDIR`: the recipe of an existing export
            return print_recipes(argv[1:], prog=f"{prog or Path(sys.argv[0]).name} recipe")
        if argv[:1] in (["trends"], ["changes"]):  # difficulty over a run's steps (bucketing.steps)
            from .steps_cli import changes_main, trends_main

            command = trends_main if argv[0] == "trends" else changes_main
            return command(argv[1:], prog=f"{prog or Path(sys.argv[0]).name} {argv[0]}")
        _import_plugins(argv)
        args = build_parser(prog).parse_args(argv)
        return run(args)
    except BucketingError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:  # the export has removed its temp files by now
        print("interrupted: no bucket file was written or changed", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)  # not the exit handlers: the worker pool's would print a traceback on Ctrl-C
    except OSError as error:  # disk full, permissions, I/O errors: the export has cleaned up after itself
        where = f" ({display(error.filename)})" if error.filename else ""
        print(f"error: {error.strerror or error}{where}; no bucket file was written or changed", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    _check_flags(args)
    no_huge_pages()
    human = sys.stderr if args.json else sys.stdout
    saved = read_manifest(args.from_manifest) if args.from_manifest else None
    metric = saved["metric"] if saved else "success_rate" if args.preset else args.metric or "mean_reward"
    get_metric(metric)
    settled = _settled_plan(args, saved, metric)
    if not is_uri(args.input_dir) and not os.path.exists(args.input_dir):  # said before anything about the output
        raise BucketingError(f"input {display(args.input_dir)} can't be read: No such file or directory")
    if not args.dry_run and not is_uri(args.output_dir) and not is_uri(args.input_dir):
        folders = output_folders(args.cumulative, args.val_fraction is not None)  # refused now, not after the read
        check_output_dir(Path(args.output_dir), Path(args.input_dir), [folder + "/" for folder in folders])
        if not args.overwrite:  # an earlier export there: say so now, not after the read (export checks every file)
            check_free(Path(args.output_dir), [args.prefix + MANIFEST])
    headline = Once(lambda: _say(human, f"\n{RULE}\n{_headline(args, saved, metric)}\n{RULE}\n"))
    if saved and args.scores is None and args.group_by is None and not saved["params"].get("scores_detected", True):
        args.scores, args.group_by = (
            saved["params"]["scores"],
            saved["params"].get("group_by") or None,
        )  # its layout too
    source = find_source(args.train_set) if args.train_set else None  # a bad source costs no read
    engine = ENGINES[args.engine](args)
    bar = None if args.json else ProgressBar("Reading")

    def progress(done: int, total: int) -> None:
        headline()  # only once the files are found and the layout settled: a run that can't start says just why
        if bar:
            bar(done, total)

    try:
        data = engine.load(progress)
    finally:
        if bar:
            bar.close()
    headline()
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    size = sum(f.size for f in data.files)
    left_out = f"; {counted(len(data.excluded), 'file')} left out by --exclude" if args.exclude else ""
    _say(
        human,
        f"Found {counted(len(data.files), _input_kind(data.files))} in {display(args.input_dir)} ({human_bytes(size)}){left_out}",
    )
    layout = data.layout
    if data.detected:
        _say(human, f"Detected layout: {layout.describe()} (as flags: {shlex.join(layout.flags())})")
    else:
        _say(human, f"Layout: {layout.describe()}")
    totals = data.totals
    grouped = f" (grouped from {counted(totals['rollout_lines'], 'line')})" if layout.grouped else ""
    _say(
        human,
        f"Loaded {counted(totals['rollouts'], 'rollout')}{grouped} from {counted(totals['lines'], 'line')} "
        f"({totals['blank']} blank, {totals['skipped']} skipped)",
    )

    joined = _join(args, data, source, human)
    plan, values = _make_plan(args, metric, data, settled)
    manifest = build_manifest(data, plan, values, args.prefix, args.order)
    _print_summary(human, manifest, values, plan)
    for warning in manifest["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)

    if not args.dry_run:
        bar = None if args.json else ProgressBar("Writing")
        try:
            manifest = engine.export(data, plan, values, bar, joined)
        finally:
            if bar:
                bar.close()
        out = args.output_dir.rstrip("/") + "/"  # a path or a URI
        _say(human, "")
        written = {f["file"]: f for f in manifest.get("files", [])}  # mixed input: each kind's own counts
        for bucket in manifest["buckets"]:
            count = written.get(bucket["file"], {"rollouts": bucket["count"], "lines": bucket["lines"]})
            lines = f" ({counted(count['lines'], 'line')})" if layout.grouped else ""
            _say(human, f"Saved {counted(count['rollouts'], 'rollout')}{lines} to {display(out + bucket['file'])}")
        if manifest["skipped_file"]:
            skipped = written.get(manifest["skipped_file"], {"lines": totals["skipped"]})["lines"]
            _say(human, f"Saved {counted(skipped, 'skipped line')} to {display(out + manifest['skipped_file'])}")
        said = {bucket["file"] for bucket in manifest["buckets"]} | {manifest["skipped_file"]}
        extra = [
            f for f in manifest.get("files", []) if f["file"] not in said
        ]  # stages, parts, mixed input's other kind
        for file in extra:
            what = counted(file["rollouts"], "rollout") if file["buckets"] else counted(file["lines"], "skipped row")
            _say(human, f"Saved {what} to {display(out + file['file'])}")
        for name in manifest.get("recipes", []):
            _say(human, f"Saved recipe to {display(out + name)}")
        for file in (manifest.get("train_set") or {}).get("files", []):
            _say(human, f"Saved {counted(file['rows'], 'training-set row')} to {display(out + file['file'])}")
        if manifest.get("difficulty_table"):
            _say(human, f"Saved the difficulty of every rollout to {display(out + manifest['difficulty_table'])}")
        _say(human, f"Saved manifest to {display(out + args.prefix + MANIFEST)}")
        for name in manifest.get("recipes", []):  # the recipes as written, read back: what the files say
            _say(human, f"\n{(Path(args.output_dir) / name).read_text(encoding='utf-8')}", end="")
        _say(human, f"\n{RULE}\nBucketing complete! Output saved to {display(args.output_dir)}\n{RULE}\n")
    else:
        _print_metrics(human, data, plan, values)
        _say(human, f"\n{RULE}\nDry run: nothing was written\n{RULE}\n")
    if args.json:
        print(json.dumps(_json_safe(manifest), ensure_ascii=False, allow_nan=False))
    return 0


def _json_safe(value):
    """``value`` with any NaN or infinity as null (JSON has neither): ``--json`` prints, whatever a metric gave."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


class _Engine:
    """What reads the input and writes the buckets, as ``--engine`` chose: the options both engines take."""

    def __init__(self, args: argparse.Namespace):
        self.args = args

    def load(self, progress: Progress | None) -> Dataset:
        raise NotImplementedError

    def export(
        self, data: Dataset, plan: Plan, values: np.ndarray, progress: Progress | None, joined: Join | None = None
    ) -> dict:
        raise NotImplementedError

    def reading(self) -> dict:
        a = self.args
        return dict(
            scores=a.scores, group_by=a.group_by, max_line_bytes=a.max_line_bytes, strict=a.strict, exclude=a.exclude
        )

    def writing(self) -> dict:
        a = self.args
        return dict(prefix=a.prefix, order=a.order, overwrite=a.overwrite)


class _Local(_Engine):
    """This machine (the default): worker processes for reading, every core for writing."""

    def load(self, progress: Progress | None) -> Dataset:
        a = self.args
        join_on = parse_join_on(a.join_on)[0] if a.train_set else ""  # the scan reads the join keys too
        return load(a.input_dir, workers=a.workers, progress=progress, join_on=join_on, **self.reading())

    def export(
        self, data: Dataset, plan: Plan, values: np.ndarray, progress: Progress | None, joined: Join | None = None
    ) -> dict:
        a = self.args
        return export(
            data,
            plan,
            a.output_dir,
            join=joined,
            annotate=a.annotate,
            values=values,
            progress=progress,
            fsync=a.fsync,
            cumulative=a.cumulative,
            val_fraction=a.val_fraction,
            seed=a.seed,
            recipes=a.recipe,
            **self.writing(),
        )


class _Ray(_Engine):
    """A Ray cluster through Ray Data; Ray is imported only when this engine is chosen (the local one never
    needs it)."""

    def __init__(self, args: argparse.Namespace):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise BucketingError("--engine ray needs Ray: pip install -r requirements-cluster.txt") from None
        from . import ray_engine

        super().__init__(args)
        self.engine = ray_engine

    def load(self, progress: Progress | None) -> Dataset:
        return self.engine.load(self.args.input_dir, address=self.args.ray_address, progress=progress, **self.reading())

    def export(
        self, data: Dataset, plan: Plan, values: np.ndarray, progress: Progress | None, joined: Join | None = None
    ) -> dict:
        return self.engine.export(
            data,
            plan,
            self.args.output_dir,
            values=values,
            single_file=self.args.single_file,
            progress=progress,
            **self.writing(),
        )


ENGINES: dict[str, type[_Engine]] = {"local": _Local, "ray": _Ray}


def _check_flags(args: argparse.Namespace) -> None:
    if args.scores:  # several paths are one sum: "a + b", or weighted "0.7 * a + 0.3 * b"
        args.scores = ScorePath.parse(" + ".join(args.scores), args.score_weights).text
    elif args.score_weights:
        raise BucketingError("--score-weights needs --scores with the paths they weigh")
    check_globs(args.exclude)
    if not args.dry_run and not args.output_dir:
        raise BucketingError("-o/--output-dir is required (or pass --dry-run)")
    if args.engine != "ray":
        given = [
            flag for flag, value in [("--ray-address", args.ray_address), ("--single-file", args.single_file)] if value
        ]
        if given:
            raise BucketingError(f"{', '.join(given)} applies to --engine ray")
    elif args.order != "input":
        raise BucketingError(
            "--engine ray writes lines in input order; drop --order difficulty (or use --engine local)"
        )
    plan_flags = [("-m", args.metric), ("-n", args.num_buckets), ("--thresholds", args.thresholds)]
    if args.from_manifest:
        given = _given(
            *plan_flags,
            ("--bucket-names", args.bucket_names),
            ("--k", args.k),
            ("--pass-threshold", args.pass_threshold),
            ("--ties", args.ties),
        )
        if given:
            raise BucketingError(f"--from-manifest sets the plan; drop {', '.join(given)}")
    if args.preset:
        given = _given(*plan_flags, ("--ties", args.ties), ("--from-manifest", args.from_manifest))
        if given:
            raise BucketingError(f"--preset sets the metric and the buckets; drop {', '.join(given)}")
    args.recipe = check_trainers(args.recipe)
    if args.recipe and (args.dry_run or args.engine == "ray"):
        raise BucketingError("--recipe is written with a local export; drop --dry-run / --engine ray")
    if args.engine == "ray" and (args.cumulative or args.val_fraction is not None):
        raise BucketingError("--cumulative and --val-fraction are written by the local engine; drop --engine ray")
    if args.val_fraction is not None:
        check_fraction(args.val_fraction)
    check_join_flags(args.train_set, args.join_on, args.annotate, args.engine)
    if args.thresholds and args.ties == "split":
        raise BucketingError("--ties split applies to percentile buckets, not to --thresholds")
    if args.prefix:
        check_name(args.prefix, "prefix")
    if args.max_line_bytes < 1:
        raise BucketingError("--max-line-bytes must be positive")


def _join(args: argparse.Namespace, data: Dataset, source: Source | None, human) -> Join | None:
    """The training set matched to the rollouts (before any plan: a dry run shows the match rate)."""
    if source is None:
        return None
    joined = join(data, source, args.join_on)
    for warning in joined.source.warnings:
        print(f"warning: --train-set: {warning}", file=sys.stderr)
    _say(human, "")
    for line in match_lines(joined, data):
        _say(human, line)
    unmatched = joined.counts()["unmatched_rollouts"]
    if args.strict and unmatched:
        example = joined.unmatched_examples(data)[0]
        raise BadLineError(
            example.split(" (")[0],
            f"no training-set row has this rollout's {joined.rollout_field}",
            f"{counted(unmatched, 'rollout')} in all",
        )
    return joined


def no_huge_pages() -> None:
    """Transparent huge pages off for this process and the workers it starts (Linux's prctl; elsewhere nothing).

    Where the system has them always on, the first touch of any 2 MB of fresh memory makes the kernel clear all
    of it, and a run makes and frees arrays and tables of tens of MB all the time: with them off, the 1M-row
    training-set join of the README spends about 0.25 s in the kernel instead of 1.1 s, an export 0.3-0.5 s
    less, and the user time is the same."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes  # already imported by numpy: free

    with contextlib.suppress(OSError, AttributeError):  # no prctl to call: the pages stay as the system has them
        ctypes.CDLL(None).prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)


def _settled_plan(args: argparse.Namespace, saved: dict | None, metric: str) -> Plan | None:
    """The plan when the flags settle it without the data (a manifest, thresholds, a preset); None for
    percentile buckets, whose flags are checked. Called before reading: a mistyped flag costs no load."""
    if saved:
        return plan_from_manifest(saved)
    params = _params(args)  # a bad --k or --pass-threshold costs no read either
    if args.preset:
        plan = PRESETS[args.preset](params)
        return plan.renamed(args.bucket_names) if args.bucket_names else plan
    if args.thresholds:
        return threshold_plan(metric, args.thresholds, args.bucket_names, params)
    percentile_names(_num_buckets(args), args.bucket_names, args.ties or "keep")
    return None


def _make_plan(args: argparse.Namespace, metric: str, data: Dataset, settled: Plan | None) -> tuple[Plan, np.ndarray]:
    """The plan to apply and the metric's value for every rollout."""
    if settled:
        values = _finite_values(data, settled.metric, settled.params)
        return settled.fitted(np.sort(values)), values  # a saved split tie, counted on these data
    params = _params(args)
    values = _finite_values(data, metric, params)
    return percentile_plan(values, metric, _num_buckets(args), args.bucket_names, args.ties or "keep", params), values


def _finite_values(data: Dataset, metric: str, params: Params) -> np.ndarray:
    """The metric's value per rollout; one that is NaN or infinite (a plugin's) stops the run before anything is
    written: it has no bucket, and the manifest (JSON) can't record it."""
    values = data.values(metric, params)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        first = bad[0]
        where = data.where(int(data.rollout_columns["file_id"][first]), int(data.rollout_columns["line"][first]))
        raise BucketingError(
            f"{metric} is not a finite number for {counted(len(bad), 'rollout')} (the first at "
            f"{where}: {values[first]}); a metric must give a finite number for every rollout"
        )
    return values


def _params(args: argparse.Namespace) -> Params:
    return Params(
        k=1 if args.k is None else args.k, pass_threshold=0.5 if args.pass_threshold is None else args.pass_threshold
    )


def _headline(args: argparse.Namespace, saved: dict | None, metric: str) -> str:
    if args.preset:
        return f"Bucketing by {metric} using the {args.preset} preset"
    if saved:
        return f"Bucketing by {metric} using the plan in {display(args.from_manifest)}"
    if args.thresholds:
        return f"Bucketing by {metric} using thresholds: {sorted(args.thresholds)}"
    return f"Bucketing by {metric} using {_num_buckets(args)} percentile buckets"


def _input_kind(files: list) -> str:
    """What the input files are, for "Found 3 JSONL files" (parquet among them: "input files")."""
    return "input file" if any(is_parquet(file) for file in files) else "JSONL file"


def _num_buckets(args: argparse.Namespace) -> int:
    return 3 if args.num_buckets is None else args.num_buckets


def _print_summary(out, manifest: dict, values: np.ndarray, plan: Plan) -> None:
    for reason, heading in ((NOT_JSONL, "Not JSONL, every line skipped"), (NOT_PARQUET, "Not readable as parquet")):
        files = [file for file in manifest["skipped_files"] if file["reason"] == reason]
        if files:
            _say(out, f"\n{heading} ({counted(len(files), 'file')}):")
        for file in files:
            _say(out, f"  {file['file']}: {file['detail']} ({counted(file['lines'], 'line')})")
    if manifest["skipped"]:
        _say(out, "\nSkipped lines:")
        for reason, count in manifest["skipped"].items():
            _say(out, f"  {reason}: {count}")
            for example in manifest["skipped_examples"][reason]:
                _say(out, f"    {example}")
    count = len(plan.buckets) if plan.mode == "percentile" else 4
    points = [100 * i / count for i in range(count + 1)]
    _say(out, f"\nDifficulty percentiles ({plan.metric}, {manifest['direction']}):")
    for point, value in zip(points, np.percentile(values, points)):
        _say(out, f"  {point:3.0f}%: {value:.4f}")
    _say(out, "\nCut points used:")
    for line in cut_lines(plan, np.sort(values)):
        _say(out, f"  {line}")
    _say(out, "\nBucket statistics (easiest first):")
    width = max(len(b["name"]) for b in manifest["buckets"])
    for bucket in manifest["buckets"]:
        seen = bucket["note"] or f"values {bucket['min']:.4g} .. {bucket['max']:.4g}"
        rollouts = "rollout " if bucket["count"] == 1 else "rollouts"
        _say(
            out,
            f"  {bucket['name']:<{width}}  {bucket['count']:>8} {rollouts}  {bucket['share']:6.1%}  "
            f"{bucket['range']}  ({seen})",
        )
    if manifest["k_exceeds_n"]:
        few = counted(manifest["k_exceeds_n"], "rollout", verb=("has", "have"))
        _say(out, f"Note: {few} fewer than k={plan.params.k} responses; pass_at_k used k = n for them")


def _print_metrics(out, data: Dataset, plan: Plan, values: np.ndarray) -> None:
    """Every metric's spread over the rollouts (``values``: the plan's, at hand): what a dry run shows to help
    choose one. A plugin metric that fails is shown failing; the run goes on (it was not the chosen metric)."""
    width = max(map(len, METRICS))
    _say(
        out,
        f"\nEvery metric, per rollout:\n  {'':<{width}} {'':<16} {'min':>10} {'median':>10} {'mean':>10} {'max':>10}",
    )
    for name, metric in METRICS.items():
        try:
            column = values if name == plan.metric else data.values(name, plan.params)
        except Exception as error:  # noqa: BLE001  (a plugin's bug, reported on its row)
            _say(out, f"  {name:<{width}} {metric.direction:<16} failed: {type(error).__name__}: {error}")
            continue
        finite = column[np.isfinite(column)]  # a plugin's NaN or inf: counted apart, not averaged in
        odd = f"  (not finite for {counted(len(column) - len(finite), 'rollout')})" if len(finite) < len(column) else ""
        if not len(finite):
            _say(out, f"  {name:<{width}} {metric.direction:<16} {'-':>10} {'-':>10} {'-':>10} {'-':>10}{odd}")
            continue
        low, middle, high = np.percentile(finite, [0, 50, 100])
        with np.errstate(over="ignore"):  # a sum of huge values (a plugin's) may overflow: then the mean reads inf
            mean = finite.mean()
        _say(
            out,
            f"  {name:<{width}} {metric.direction:<16} {low:>10.4g} {middle:>10.4g} {mean:>10.4g} {high:>10.4g}{odd}",
        )


def _say(stream, text: str, end: str = "\n") -> None:
    print(text, file=stream, end=end)


def _import_plugins(argv: list[str]) -> None:
    """Import ``--plugin`` modules before the parser is built, so their metrics are valid ``-m`` choices."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--plugin", action="append", default=[])
    known, _ = pre.parse_known_args(argv)
    for name in known.plugin:
        try:
            if name.endswith(".py"):
                spec = importlib.util.spec_from_file_location(Path(name).stem, name)
                if spec is None or spec.loader is None:
                    raise ImportError("not a Python module")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                importlib.import_module(name)
        except (ImportError, OSError) as exc:
            raise BucketingError(f"--plugin {name}: {exc}") from None
        except Exception as exc:  # noqa: BLE001  (the plugin's own bug: one line, not a traceback)
            raise BucketingError(f"--plugin {name} failed: {type(exc).__name__}: {exc}") from None


class Once:
    """Calls ``action`` the first time it is called, and never again."""

    def __init__(self, action):
        self.action, self.done = action, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.action()


def _given(*flags: tuple[str, object]) -> list[str]:
    """The flags among ``(flag, value)`` pairs that were given on the command line (a value other than None)."""
    return [flag for flag, value in flags if value is not None]
