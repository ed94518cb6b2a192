"""Export: write the bucket files through the engine; show the manifest and the equivalent command."""

import os

import pandas as pd
import streamlit as st

import bucketing
from bucketing.command_line import command_line
from bucketing.join import Join
from bucketing.layout import parse_group_by
from bucketing.outputs import DIFFICULTY, MANIFEST, check_output_dir, train_set_outputs
from bucketing.parquet_write import outputs_by_kind
from bucketing.plan import check_name
from bucketing.recipes import TRAINERS, render, write_names
from bucketing.wording import counted, human_bytes
from bucketing.writer import ORDERS
from pages.common import shared, trainset
from pages.common.archive import written_sizes, zipped
from pages.common.text import literal

ZIP_LIMIT = 200 << 20  # offer a zip download below this many bytes of output
UPLOADS_PLACEHOLDER = "YOUR_FOLDER"  # the -i of the shown command when the data were uploaded
KINDS = {"jsonl": "every JSONL input line copied byte for byte", "parquet": "the parquet inputs' rows, value for value"}


def written_files(manifest: dict) -> list[dict]:
    """Every file an export wrote, from its manifest: the file, what it holds, its lines or rows."""
    rows = [
        {"file": f["file"], "holds": "rollouts" if f["buckets"] else "skipped lines", "count": f["lines"]}
        for f in manifest["files"]
    ]
    rows += [{"file": f["file"], "holds": "training-set rows", "count": f["rows"]} for f in train_files_of(manifest)]
    if manifest.get("difficulty_table"):
        rows.append({"file": manifest["difficulty_table"], "holds": "difficulty table", "count": None})
    rows += [{"file": name, "holds": "recipe", "count": None} for name in manifest.get("recipes") or []]
    return [*rows, {"file": manifest["prefix"] + MANIFEST, "holds": "manifest", "count": None}]


def output_format(
    files: list, prefix: str, train_files: list[str], joined: Join | None, annotate: str | None, recipes: list[str]
):
    """What an export with these settings writes, in words (markdown, names literal), a line per kind of file."""
    buckets = [f for f in files if f.buckets]
    for kind, what in KINDS.items():
        if any(f.kind == kind for f in buckets):
            yield f"**{counted(len([f for f in buckets if f.kind == kind]), f'.{kind} file')}** of rollouts: {what}"
    yield from (f"**{literal(f.name)}**: the lines that can't be used" for f in files if not f.buckets)
    yield f"**{literal(prefix + DIFFICULTY)}**: every rollout's metrics, bucket and difficulty rank"
    if joined:
        annotated = f", annotated with {literal(annotate)}" if annotate else ""
        yield (
            f"**train\\_set/**: {counted(len(train_files), f'.{joined.source.format} file')} — each bucket's source "
            f"rows{annotated}, and the rows no rollout matched"
        )
    else:
        yield "no train\\_set/: give a training set above to write each bucket's source rows"
    yield from (
        f"**{literal(name)}**: the {trainer} recipe" for name, trainer in zip(write_names(recipes, prefix), recipes)
    )
    yield f"**{literal(prefix + MANIFEST)}**, last: what was read and written"


def train_files_of(manifest: dict) -> list[dict]:
    return (manifest.get("train_set") or {}).get("files", [])


data = shared.open_page(
    "Export",
    "Write one file per bucket — every input line copied byte for byte — plus a manifest; optionally each "
    "bucket's rows of the training set the rollouts came from, and the recipe that trains on them.",
)
s = st.session_state
try:
    plan = shared.current_plan(data)
except bucketing.BucketingError as error:
    st.error(f"The plan on the Buckets page can't be used: {shared.shown(error)}")
    st.stop()

st.markdown(
    f"**Plan:** {shared.shown(plan.describe())} — {shared.shown(', '.join(plan.names))}. Change it on the Buckets page."
)

left, middle, right = st.columns([3, 1, 1])
left.text_input(
    "Output folder",
    **shared.bound("out_dir"),
    help="Created if needed; must be under the allowed roots and not inside the input folder.",
)
middle.text_input("File prefix", placeholder="none", **shared.bound("prefix"))
right.radio(
    "Line order",
    ORDERS,
    format_func={"input": "as in the input", "difficulty": "easiest first"}.get,
    **shared.bound("order"),
)

options = st.columns([2, 1, 1])
cumulative = options[0].checkbox(
    "Cumulative stages too",
    **shared.bound("cumulative"),
    help="cumulative/{name}.jsonl: that bucket and every easier one — the phases of a "
    "curriculum (the last holds every rollout).",
)
split = options[0].checkbox(
    "Hold out validation rollouts",
    **shared.bound("split"),
    help="Split each bucket once into train/ and val/ (stages too): a validation rollout is "
    "never in any training file. Decided by each rollout's content and the seed.",
)
val_fraction = options[1].number_input(
    "Validation share", min_value=0.01, max_value=0.99, step=0.01, disabled=not split, **shared.bound("val_fraction")
)
seed = int(
    options[2].number_input(
        "Seed", min_value=0, max_value=2**31 - 1, step=1, disabled=not split, **shared.bound("seed")
    )
)
val_fraction = float(val_fraction) if split else None

st.subheader("Training set", anchor=False)
st.caption(
    "Optional: the prompt dataset the rollouts were sampled from (a .parquet or .jsonl file, or a folder of them). "
    "Its rows are written per bucket under train_set/, each where the rollouts with its key went."
)
st.text_input(
    "Training-set source",
    placeholder="none",
    **shared.bound("train_set"),
    help="A file or folder under the allowed roots, as on the Data page.",
)
fields = st.columns(3)
fields[0].text_input(
    "Rollout field", placeholder="extra_info.index", **shared.bound("join_rollout"), help="Names a source row."
)
fields[1].text_input(
    "Source field", placeholder="the same", **shared.bound("join_source"), help="When the source names it otherwise."
)
fields[2].text_input(
    "Annotate field",
    placeholder="none",
    **shared.bound("annotate"),
    help="Adds {pass_rate, mean_reward, n, bucket, metric, value} to every matched source row (e.g. "
    "extra_info.difficulty); JSONL lines that get it are re-serialised.",
)
seen = trainset.line_fields(data)
if seen:
    st.caption("Fields in the rollouts' first lines: " + literal(", ".join(seen)))
joined: Join | None = None
train_path = None
train_problem = ""  # why Export waits: a source given whose match isn't known
join_on = trainset.join_on(s["join_rollout"], s["join_source"])
annotate = s["annotate"].strip() or None
if s["train_set"].strip():
    try:
        train_path = trainset.source_path(s["train_set"])
        if not join_on:
            train_problem = "Give the rollout field that names a source row (e.g. extra_info.index)."
            st.info(train_problem)
        else:
            with st.spinner("Matching the training set…"):
                joined = trainset.matched(data, train_path, join_on, annotate)
    except bucketing.BucketingError as error:
        train_problem = "Fix the training set or clear its source to export."
        st.error(shared.shown(error))
    except OSError as error:  # e.g. a folder on the way that can't be searched
        train_problem = "Fix the training set or clear its source to export."
        st.error(f"{shared.shown(s['train_set'])} can't be used: {shared.shown(error.strerror)}")
if joined is not None:
    trainset.show_match(joined, data)

st.subheader("Recipes", anchor=False)
st.multiselect(
    "Trainer recipes",
    TRAINERS,
    placeholder="none",
    **shared.bound("recipes"),
    help="The settings that train each trainer on the files written, easiest first: written beside the manifest "
    "(recipe-TRAINER.md) and shown after the export.",
)
recipes = list(s["recipes"])

files = outputs_by_kind(data, plan, s["prefix"], cumulative, split)
train_files = (
    [o.name for o in train_set_outputs(plan, s["prefix"], joined.source.format, cumulative, split)] if joined else []
)
names = [
    *(f.name for f in files),
    *train_files,
    s["prefix"] + DIFFICULTY,
    *write_names(recipes, s["prefix"]),
    s["prefix"] + MANIFEST,
]
try:
    out = shared.allowed(s["out_dir"])
    if s["prefix"]:
        check_name(s["prefix"], "prefix")
    check_output_dir(out, data.root, names)
    existing = [name for name in names if os.path.lexists(out / name)]  # a link there counts (export refuses it)
except bucketing.BucketingError as error:
    st.error(shared.shown(error))
    st.stop()
except OSError as error:  # e.g. a folder on the way that can't be searched
    st.error(f"{shared.shown(s['out_dir'])} can't be used: {shared.shown(error.strerror)}")
    st.stop()

st.subheader("Output format", anchor=False)
st.markdown(
    "\n".join(f"- {line}" for line in output_format(files, s["prefix"], train_files, joined, annotate, recipes))
)

overwrite = False
if existing:
    overwrite = st.checkbox(
        f"Replace {counted(len(existing), 'existing file')} in "
        f"{shared.shown(out)}: {shared.shown(', '.join(existing))}",
        key="confirm_overwrite",
    )

if train_problem:
    st.caption(train_problem)
if st.button("Export", type="primary", disabled=(bool(existing) and not overwrite) or bool(train_problem)):
    values, _ = shared.column(data, plan.metric)
    bar = st.progress(0.0, text="Writing…")
    try:
        manifest = bucketing.export(
            data,
            plan,
            out,
            values=values,
            prefix=s["prefix"],
            order=s["order"],
            overwrite=overwrite,
            cumulative=cumulative,
            val_fraction=val_fraction,
            seed=seed,
            roots=shared.roots(),
            join=joined,
            annotate=annotate if joined else None,
            recipes=recipes,
            progress=shared.stop_when_gone(
                lambda done, total: bar.progress(min(done / max(total, 1), 1.0), text=f"Writing {human_bytes(done)}")
            ),
        )
    except shared.SessionGone:
        st.stop()  # the export was abandoned before anything was renamed into place
    except (bucketing.BucketingError, OSError) as error:
        bar.empty()
        st.error(f"Nothing was written: {shared.shown(error)}")
        st.stop()
    bar.empty()
    source = s["source"]
    uploaded = shared.is_upload(source.path)  # a temporary folder that goes with the session: not worth repeating
    s["last_export"] = {
        "out": str(out),
        "manifest": manifest,
        "uploaded": uploaded,
        "command": command_line(
            UPLOADS_PLACEHOLDER if uploaded else str(source.path),
            str(out),
            plan,
            scores=source.scores,
            group_by=parse_group_by(source.group_by),
            prefix=s["prefix"],
            order=s["order"],
            overwrite=overwrite,
            cumulative=cumulative,
            val_fraction=val_fraction,
            seed=seed,
            exclude=source.exclude,
            train_set=str(train_path) if joined else None,
            join_on=join_on if joined else None,
            annotate=annotate if joined else None,
            recipes=recipes,
        ),
        "recipes": {trainer: render(trainer, manifest, out) for trainer in recipes},  # what the export wrote
    }

last = s["last_export"]
if last:
    manifest = last["manifest"]
    st.success(
        f"Wrote {counted(manifest['totals']['rollouts'], 'rollout', ',')} to {shared.shown(last['out'])}"
        + (
            f" and {counted(manifest['totals']['skipped'], 'skipped line', ',')} to "
            f"{shared.shown(manifest['skipped_file'])}"
            if manifest["skipped_file"]
            else ""
        )
    )
    st.dataframe(
        pd.DataFrame(manifest["buckets"])[["name", "file", "count", "lines", "share", "min", "max", "difficulty_rank"]],
        hide_index=True,
        column_config={"share": st.column_config.NumberColumn(format="percent")},
    )
    stages_and_splits = [f for f in manifest["files"] if f["cumulative"] or f["part"] != "all"]
    if stages_and_splits:
        st.markdown(
            "**Stages and splits**"
            + (
                f" — validation share {manifest['split']['val_fraction']:g}, seed {manifest['split']['seed']}"
                if manifest["split"]
                else ""
            )
        )
        st.dataframe(pd.DataFrame(stages_and_splits)[["file", "part", "buckets", "rollouts", "lines"]], hide_index=True)
    train = manifest.get("train_set")
    if train:
        st.markdown(
            f"**Training set** — {counted(train['source_rows'], 'source row', ',')} of {shared.shown(train['source'])}: "
            f"{train['matched_rollouts']:,} rollouts matched, {counted(train['unscored_rows'], 'row', ',')} unscored"
        )
        st.dataframe(pd.DataFrame(train["files"])[["file", "part", "buckets", "rows"]], hide_index=True)
    for trainer, text in last.get("recipes", {}).items():
        with st.expander(f"Recipe: {trainer}", expanded=True):
            st.code(text, language="markdown", wrap_lines=True)
    st.markdown("**Files written**")
    st.dataframe(pd.DataFrame(written_files(manifest)).astype({"count": "Int64"}), hide_index=True)
    st.markdown("**The same export from the command line**")
    st.code(last["command"], language="bash", wrap_lines=True)
    if last.get("uploaded"):
        st.caption(
            f"The data came from uploaded files, kept only while this session lasts: put the same files in a folder "
            f"and give that folder in place of {UPLOADS_PLACEHOLDER}."
        )
    written = [row["file"] for row in written_files(manifest)]
    roots = shared.roots()  # now: the zip is made later, on the click, outside this run
    size = sum(written_sizes(last["out"], written, roots).values())
    if size <= ZIP_LIMIT:
        st.download_button(
            f"Download all as .zip ({human_bytes(size)} before compression)",
            data=lambda: zipped(last["out"], written, roots, ZIP_LIMIT),
            file_name="buckets.zip",
            mime="application/zip",
            on_click="ignore",
        )
    with st.expander("manifest.json"):
        st.json(manifest, expanded=1)
