"""An export as the command line that makes the same files: the app shows it, so a pipeline can repeat the run."""

from __future__ import annotations

import shlex
from collections.abc import Sequence

from .plan import PRESETS, Plan, default_names


def command_line(
    input_dir: str,
    output_dir: str,
    plan: Plan,
    *,
    scores: str | None = None,
    group_by: Sequence[str] = (),
    prefix: str = "",
    order: str = "input",
    overwrite: bool = False,
    cumulative: bool = False,
    val_fraction: float | None = None,
    seed: int = 0,
    exclude: Sequence[str] = (),
    train_set: str | None = None,
    join_on: str | None = None,
    annotate: str | None = None,
    recipes: Sequence[str] = (),
) -> str:
    """The shell command that makes the same files as
    ``export(load(input_dir, scores, group_by, exclude=exclude), plan, output_dir, ...)``; with ``train_set``,
    ``join=join(data, train_set, join_on)`` and ``annotate``; ``recipes``: the trainers whose recipe it writes."""
    args = ["python", "-m", "bucketing", "-i", str(input_dir), "-o", str(output_dir)]
    for glob in exclude:
        args += ["--exclude", glob]
    args += ["--preset", plan.preset] if plan.preset else ["-m", plan.metric]
    if plan.params.k != 1:
        args += ["--k", str(plan.params.k)]
    if plan.params.pass_threshold != 0.5:
        args += ["--pass-threshold", repr(float(plan.params.pass_threshold))]
    if plan.preset:
        names, defaults = plan.names, PRESETS[plan.preset]().names
    elif plan.mode == "percentile":
        args += ["-n", str(len(plan.buckets))]
        args += ["--ties", plan.ties] if plan.ties != "keep" else []
        names, defaults = plan.names, default_names(len(plan.buckets))
    else:
        args += ["--thresholds", *(repr(float(c)) for c in plan.cuts)]
        names = [b.name for b in sorted(plan.buckets, key=lambda b: b.interval)]
        defaults = [f"bucket_{i}" for i in range(len(plan.buckets))]
    args += ["--bucket-names", *names] if names != defaults else []
    args += ["--scores", scores] if scores else []
    args += ["--group-by", ",".join(group_by)] if group_by else []
    args += ["--prefix", prefix] if prefix else []
    args += ["--order", order] if order != "input" else []
    args += ["--cumulative"] if cumulative else []
    args += ["--val-fraction", repr(float(val_fraction))] if val_fraction is not None else []
    args += ["--seed", str(seed)] if val_fraction is not None and seed else []
    args += ["--train-set", str(train_set), "--join-on", str(join_on)] if train_set else []
    args += ["--annotate", annotate] if train_set and annotate else []
    args += ["--recipe", ",".join(recipes)] if recipes else []
    args += ["--overwrite"] if overwrite else []
    return shlex.join(args)
