"""``bucketing trends`` and ``bucketing changes``: difficulty over a training run's steps, on the command line."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import OneLineParser
from .metrics import METRICS, Params
from .outputs import MANIFEST
from .sources import display
from .steps import CLASSES, StepData, changes, compare_runs, load_steps, parse_range, trends
from .wording import counted
from .writer import write_groups

HOW = "steps come from --step-field, else from the files' names (12.jsonl, train_data_step12.jsonl, completions_00012.parquet)"


def _parser(prog: str, description: str, example: str, runs: int = 1) -> OneLineParser:
    parser = OneLineParser(prog=prog, description=description, epilog=f"{HOW}. example: {example}")
    add = parser.add_argument
    if runs == 1:
        add("-i", "--input-dir", required=True, help="the run's rollout files (a folder, or one file)")
    else:
        add("-i", "--input-dir", required=True, action="append", help="a run's rollout files; twice to compare runs")
    add("--step-field", help="the field that holds each line's step (e.g. step); default: the files' names")
    add("--prompt-field", help="the field(s) that say which prompt a rollout is (default: the layout's group fields)")
    add("--scores", help="score path (default: detected)")
    add("--group-by", help="fields whose equal values make lines one rollout (default: detected)")
    add("--k", type=int, default=1, help="k of pass_at_k (default: 1)")
    add("--pass-threshold", type=float, default=0.5, help="a response passes when its score >= this (default: 0.5)")
    add("--json", action="store_true", help="print JSON (for scripts) instead of a table")
    return parser


def _load(args: argparse.Namespace, input_dir: str | None = None) -> StepData:
    """The run, with a word on stderr for lines left out (as the bucketing command says them)."""
    data = load_steps(
        input_dir or args.input_dir,
        step_field=args.step_field,
        prompt_fields=args.prompt_field,
        scores=args.scores,
        group_by=args.group_by,
    )
    reasons = data.dataset.skipped_reasons(examples=1)
    if reasons:
        said = "; ".join(
            f"{entry['count']:,} {reason} (e.g. {entry['examples'][0]})" for reason, entry in reasons.items()
        )
        print(f"warning: {counted(len(data.dataset.skipped_lines), 'line')} skipped: {said}", file=sys.stderr)
    return data


def _params(args: argparse.Namespace) -> Params:
    return Params(k=args.k, pass_threshold=args.pass_threshold)


def trends_main(argv: list[str], prog: str = "bucketing trends") -> int:
    """Per step: the metric's quantiles over the prompts of that step, and the solved / learnable / unsolved shares."""
    parser = _parser(
        prog,
        "How difficulty moves over a run: per step, the metric's quantiles and the learnability shares.",
        f"{prog} -i ./rollout_dumps -m success_rate --step-window 10",
    )
    parser.add_argument("-m", "--metric", default="mean_reward", help=f"one of {', '.join(METRICS)}")
    parser.add_argument("--step-window", type=int, default=1, metavar="W", help="pool W steps into one row")
    args = parser.parse_args(argv)
    data = _load(args)
    rows = trends(data, args.metric, _params(args), args.step_window)
    if args.json:
        print(json.dumps({**_about(data, args.metric), "step_window": args.step_window, "rows": rows}, indent=2))
        return 0
    print(f"{args.metric} per step ({_described(data)}); shares at pass threshold {args.pass_threshold:g}\n")
    names = list(rows[0]["quantiles"]) if rows else []
    header = ["step", "prompts", "rollouts", *names, "mean", *CLASSES]
    table = [header]
    for row in rows:
        step = str(row["step"]) if "step" in row else "{}-{}".format(*row["steps"])
        numbers = [_number(v) for v in [*row["quantiles"].values(), row["mean"]]]
        shares = [f"{row['shares'][name]:.0%}" for name in CLASSES]
        table.append([step, str(row["prompts"]), str(row["rollouts"]), *numbers, *shares])
    _print_table(table)
    return 0


def changes_main(argv: list[str], prog: str = "bucketing changes") -> int:
    """How many prompts moved from one learnability class to another between two step ranges (or two runs)."""
    parser = _parser(
        prog,
        "Prompts that changed between two step ranges: learned, forgotten, still unsolved, always solved. "
        "With two -i, the same prompts in two runs, and those the first run solves clearly less often.",
        f"{prog} -i ./rollout_dumps --from 1-100 --to 101-200",
        runs=2,
    )
    add = parser.add_argument
    add("--from", dest="before", metavar="STEPS", help="a step or range: 1-100 (two runs: of the first; default all)")
    add("--to", dest="after", metavar="STEPS", help="a later step or range: 101-200 (two runs: of the second)")
    add("-o", "--output-dir", help="write each cell's rollouts to a file here (byte-exact; two runs: the first's)")
    add("--overwrite", action="store_true", help="replace an earlier export in --output-dir")
    add("--no-fsync", action="store_true", help="don't flush each file to the disk before renaming")
    args = parser.parse_args(argv)
    if len(args.input_dir) > 2:
        parser.error("-i: one run, or two to compare")
    before = parse_range(args.before, "--from") if args.before else None
    after = parse_range(args.after, "--to") if args.after else None
    if len(args.input_dir) == 2:
        return _compare(args, before, after)
    if before is None or after is None:
        parser.error("--from and --to are both needed for one run (two -i compare runs)")
    data = _load(args, args.input_dir[0])
    found = changes(data, before, after, _params(args))
    seen = [int((found.prompt_from >= 0).sum()), int((found.prompt_to >= 0).sum())]
    both = int(found.matrix.sum())
    record = {**_about(data, "success_rate"), "from": list(before), "to": list(after)}
    record |= {"pass_threshold": args.pass_threshold, "k": args.k}
    record |= {"prompts_in_from": seen[0], "prompts_in_to": seen[1], "prompts_in_both": both}
    record |= {"matrix": _matrix_record(found.matrix), "counts": found.named()}
    if args.output_dir:
        groups, ids = found.groups(data)
        record = _write(args, data, groups, ids, {"changes": record})
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(f"Prompts by learnability at pass threshold {args.pass_threshold:g} ({_described(data)})")
    print(f"steps {_range(before)}: {seen[0]} prompts; steps {_range(after)}: {seen[1]}; in both: {both}\n")
    _print_matrix(found.matrix, "from \\ to")
    print()
    for name, count in found.named().items():
        print(f"{name.replace('_', ' ')}: {count}")
    _say_written(args, record)
    return 0


def _write(args: argparse.Namespace, data: StepData, groups: list[str], ids, manifest: dict, *others) -> dict:
    return write_groups(
        data.dataset,
        groups,
        ids,
        args.output_dir,
        manifest,
        overwrite=args.overwrite,
        fsync=not args.no_fsync,
        others=others,
    )


def _say_written(args: argparse.Namespace, manifest: dict) -> None:
    if args.output_dir:
        print(f"\nWrote {len(manifest['files'])} files and {MANIFEST} to {display(args.output_dir)}:")
        for entry in manifest["files"]:
            print(f"  {entry['file']}: {counted(entry['rollouts'], 'rollout')}, {counted(entry['lines'], 'line')}")


def _compare(args: argparse.Namespace, before: tuple[int, int] | None, after: tuple[int, int] | None) -> int:
    runs = [_load(args, folder) for folder in args.input_dir]
    found = compare_runs(runs[0], runs[1], before, after, _params(args))
    record = {
        "runs": [
            {**_about(run, "success_rate"), "step_range": bounds and list(bounds)}
            for run, bounds in zip(runs, [before, after])
        ],
        "pass_threshold": args.pass_threshold,
        "prompts_in_both": found.shared,
        "matrix": _matrix_record(found.matrix),
        "inverted": found.inverted,
    }
    if args.output_dir:
        groups, ids = found.groups(runs[0])
        record = _write(args, runs[0], groups, ids, {"runs_compared": record}, runs[1].dataset)
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    first, second = (display(folder) for folder in args.input_dir)
    print(f"The same prompts in two runs, by learnability at pass threshold {args.pass_threshold:g}")
    print(f"{first}: {_described(runs[0])}\n{second}: {_described(runs[1])}\nin both: {found.shared}\n")
    _print_matrix(found.matrix, "first \\ second")
    print(
        f"\n{counted(len(found.inverted), 'prompt')} the first run solves clearly less often than the second "
        "(95 % intervals apart; a wrong reference answer?):"
    )
    for row in found.inverted:
        ours, theirs = row["reference"], row["other"]
        print(
            f"  {row['where']}: {ours['passed']}/{ours['responses']} against {theirs['passed']}/{theirs['responses']}"
        )
    return 0


def _about(data: StepData, metric: str) -> dict:
    steps = data.steps()
    return {
        "input": str(data.dataset.root),
        "metric": metric,
        "steps_from": data.step_source,
        "prompt_fields": list(data.prompt_fields),
        "steps": [int(steps[0]), int(steps[-1])] if len(steps) else [],
        "prompts": data.prompts,
        "rollouts": len(data.step),
        "skipped": {reason: entry["count"] for reason, entry in data.dataset.skipped_reasons().items()},
    }


def _described(data: StepData) -> str:
    steps = data.steps()
    span = f"steps {steps[0]}-{steps[-1]}" if len(steps) else "no steps"
    return f"{len(steps)} steps, {span}, from {data.step_source}; {data.prompts} prompts by {', '.join(data.prompt_fields)}"


def _range(bounds: tuple[int, int]) -> str:
    return str(bounds[0]) if bounds[0] == bounds[1] else f"{bounds[0]}-{bounds[1]}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _matrix_record(matrix) -> dict:
    """The learnability matrix as JSON: from class -> to class -> prompts."""
    return {a: {b: int(matrix[i, j]) for j, b in enumerate(CLASSES)} for i, a in enumerate(CLASSES)}


def _print_matrix(matrix, corner: str) -> None:
    _print_table([[corner, *CLASSES]] + [[name, *(str(int(n)) for n in matrix[i])] for i, name in enumerate(CLASSES)])


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)).rstrip(), file=sys.stdout)
