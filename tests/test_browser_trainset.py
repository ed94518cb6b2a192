"""The Export page's training set in a real browser: fill it in, see the match rate, export."""

from __future__ import annotations

import json

import pytest

from .browser_support import assert_no_error_shown, expect, export_done, go_to, settle
from .test_app_trainset import ROLLOUTS, make_data

pytestmark = pytest.mark.browser


def fill(page, label: str, value: str) -> None:
    box = page.get_by_role("textbox", name=label, exact=True)
    box.fill(value)
    box.press("Enter")
    settle(page)
    expect(box).to_have_value(value)


def test_fill_the_training_set_see_the_match_rate_and_export(page, allowed_root):
    rollouts, source = make_data(allowed_root)
    page.get_by_role("textbox", name="Folder").fill(str(rollouts))
    page.get_by_role("button", name="Load", exact=True).click()
    settle(page)
    go_to(page, "Export")
    out = allowed_root / "out"
    fill(page, "Output folder", str(out))
    fill(page, "Training-set source", str(source))
    fill(page, "Rollout field", "extra_info.index")
    matched = page.locator('[data-testid="stMetric"]').filter(has_text="Matched rollouts")
    expect(matched).to_contain_text(f"{ROLLOUTS - 1} of {ROLLOUTS}")
    assert not out.exists()  # the match rate comes before anything is written
    assert_no_error_shown(page, "Export with a training set")

    page.get_by_role("button", name="Export", exact=True).click()
    export_done(page, f"Wrote {ROLLOUTS} rollouts to {out}", "export-training-set")
    manifest = json.loads((out / "manifest.json").read_text())
    train = manifest["train_set"]
    assert train["matched_rollouts"] == ROLLOUTS - 1 and train["files"]
    for entry in train["files"]:
        assert (out / entry["file"]).is_file(), entry["file"]
