"""Export: write the bucket files through the engine; show the manifest and the equivalent command."""

import os

import pandas as pd
import streamlit as st

import bucketing
from bucketing.command_line import command_line
from bucketing.layout import parse_group_by
from bucketing.outputs import MANIFEST, check_output_dir, output_names
from bucketing.plan import check_name
from bucketing.wording import counted, human_bytes
from bucketing.writer import ORDERS
from pages.common import shared
from pages.common.archive import written_sizes, zipped

ZIP_LIMIT = 200 << 20  # offer a zip download below this many bytes of output
UPLOADS_PLACEHOLDER = "YOUR_FOLDER"  # the -i of the shown command when the data were uploaded

data = shared.open_page(
    "Export",
    "Write one JSONL file per bucket — every input line copied byte for byte — plus a manifest.",
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

names = output_names(plan, s["prefix"], len(data.skipped) > 0, cumulative, split)
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

overwrite = False
if existing:
    overwrite = st.checkbox(
        f"Replace {counted(len(existing), 'existing file')} in "
        f"{shared.shown(out)}: {shared.shown(', '.join(existing))}",
        key="confirm_overwrite",
    )

if st.button("Export", type="primary", disabled=bool(existing) and not overwrite):
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
        ),
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
    st.markdown("**The same export from the command line**")
    st.code(last["command"], language="bash", wrap_lines=True)
    if last.get("uploaded"):
        st.caption(
            f"The data came from uploaded files, kept only while this session lasts: put the same files in a folder "
            f"and give that folder in place of {UPLOADS_PLACEHOLDER}."
        )
    written = [f["file"] for f in manifest["files"]] + [manifest["prefix"] + MANIFEST]
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
