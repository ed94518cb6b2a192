"""The previews (issue 19): search prompts and responses, order and page the rollouts, ground truth, chat prompts.

The search is checked against an oracle that decodes every line with json and looks in the extracted texts in
plain Python, on lines full of what JSON escapes (newlines, quotes, backslashes, non-ASCII, \\u escapes, letters
written as escapes), in plain, .gz, grouped and parquet inputs.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bucketing
from bucketing.errors import BucketingError
from bucketing.metrics import METRICS
from bucketing.preview import ground_truth, lookup, ordered, search_texts
from bucketing.search import Query, search

from .app_support import go, load_folder, plain
from .conftest import write_lines

WORDS = [
    "apple",
    "Apple",
    "APPLE",
    "café",
    "CAFÉ",
    "naïve",
    "中文",
    "😊",
    'say "hi"',
    "back\\slash",
    "a/b",
    "line\ntwo",
    "tab\there",
    "Kelvin \u212a",  # the Kelvin sign: "k" when case is ignored
    "long \u017f",  # long s: "s" when case is ignored
    "İstanbul",
    "42 apples",
    "x",
    "y",
    "**bold**",
    "<b>html</b>",
]
QUERIES = [
    Query("apple"),
    Query("apple", ignore_case=False),
    Query("APPLE", ignore_case=False),
    Query("café"),
    Query("CAFÉ", ignore_case=False),
    Query("中文"),
    Query("😊"),
    Query('say "hi"'),
    Query("back\\slash"),
    Query("a/b"),
    Query("line\ntwo"),
    Query("\t"),
    Query("k"),  # matches the Kelvin sign too
    Query("S"),  # matches the long s
    Query("i"),
    Query("Kelvin \u212a", ignore_case=False),
    Query("kelvin", ignore_case=False),  # only "Kelvin" is there
    Query("nothing like it"),
    Query(r"\d+ apples", regex=True),
    Query(r"^line\ntwo$", regex=True, ignore_case=False),
    Query(r"(?m)^two", regex=True),
    Query(r"x.*y", regex=True),
    Query(r"A(PP|pp)LE", regex=True, ignore_case=False),
    Query(r"\bhi\b", regex=True),
]


def text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 3)))


def escaped_letters(line: str) -> str:
    """The same JSON with every "a" written as \\u0061 (keys too) and every "/" as \\/ (both legal JSON)."""
    return re.sub(
        r"(\\u[0-9a-f]{4}|\\\\)|a|/", lambda m: m.group(1) or ("\\u0061" if m.group() == "a" else "\\/"), line
    )


def record(rng: random.Random, i: int) -> dict:
    prompt = text(rng)
    if rng.random() < 0.4:  # a chat
        prompt = [{"role": "system", "content": text(rng)}, {"role": "user", "content": text(rng)}]
    responses = [text(rng) for _ in range(rng.randint(1, 3))]
    return {"id": i, "prompt": prompt, "responses": responses, "rewards": [rng.choice([0, 1]) for _ in responses]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder of every kind of input: plain (UTF-8 as it is, ASCII with \\u escapes, letters escaped), .gz, parquet."""
    folder = tmp_path_factory.mktemp("search")
    rng = random.Random(19)
    records = [record(rng, i) for i in range(400)]
    lines = [json.dumps(r, ensure_ascii=False) for r in records[:100]]
    write_lines(folder / "a.jsonl", [line.encode() for line in lines])
    write_lines(folder / "b.jsonl", [json.dumps(r).encode() for r in records[100:200]])  # \uXXXX escapes
    write_lines(folder / "c.jsonl", [escaped_letters(json.dumps(r)).encode() for r in records[200:250]])
    body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records[250:330]).encode()
    (folder / "d.jsonl.gz").write_bytes(gzip.compress(body))
    rows = [dict(r, prompt=json.dumps(r["prompt"], ensure_ascii=False)) for r in records[330:]]  # one type a column
    pq.write_table(pa.Table.from_pylist(rows), folder / "e.parquet", row_group_size=16)
    return folder


def oracle_texts(data: bucketing.Dataset) -> dict[int, list[str]]:
    """Every rollout's searched texts, from the files decoded with json (pyarrow for parquet), line by line."""
    texts: dict[int, list[str]] = {}
    where = {
        (int(f), int(n)): int(r)
        for f, n, r in zip(data.line_columns["file_id"], data.line_columns["line"], data.line_columns["rollout"])
    }
    for file_id, file in enumerate(data.files):
        if file.path.name.endswith(".parquet"):
            values = pq.read_table(file.path).to_pylist()
        else:
            raw = gzip.decompress(file.path.read_bytes()) if file.path.name.endswith(".gz") else file.path.read_bytes()
            values = [json.loads(line) for line in raw.decode().splitlines()]
        for number, value in enumerate(values, start=1):
            if (file_id, number) in where:
                texts.setdefault(where[(file_id, number)], []).extend(search_texts(value))
    return texts


def matches(query: Query, value: str) -> bool:
    if query.regex:
        return re.search(query.text, value, re.IGNORECASE if query.ignore_case else 0) is not None
    if query.ignore_case:
        return re.search(re.escape(query.text), value, re.IGNORECASE) is not None
    return query.text in value


def expected(texts: dict[int, list[str]], query: Query, rows=None) -> list[int]:
    among = set(texts) if rows is None else set(int(r) for r in rows)
    return sorted(r for r in among if any(matches(query, t) for t in texts.get(r, [])))


def test_search_finds_exactly_the_rollouts_whose_decoded_text_matches(inputs):
    data = bucketing.load(inputs, scores="rewards[]")
    assert len(data.scores) == 400 and len(data.files) == 5
    texts = oracle_texts(data)
    assert len(texts) == 400
    for query in QUERIES:
        found = search(data, query)
        assert found.stopped is None and found.searched == found.total == 400
        assert found.rows.tolist() == expected(texts, query), query
    # every query above that could match did, in every kind of file
    counts = {query: len(search(data, query).rows) for query in QUERIES}
    assert [q.text for q, n in counts.items() if not n] == ["kelvin", "nothing like it"]
    files = data.line_columns["file_id"][search(data, Query("a/b")).rows]
    assert set(files.tolist()) == {0, 1, 2, 3, 4}


def test_the_raw_shortcut_never_misses_an_escaped_character(tmp_path):
    """Letters written as \\u escapes, a newline as \\n: the raw bytes don't hold the text, the decoded text does."""
    lines = [
        b'{"prompt": "\\u0041pple pie", "responses": ["no"], "rewards": [1]}',
        b'{"prompt": "line\\ntwo", "responses": ["caf\\u00e9"], "rewards": [0]}',
        b'{"prompt": "q", "responses": ["\\ud83d\\ude0a smile", "\\u212a"], "rewards": [0, 1]}',
        b'{"prompt": "q", "responses": ["say \\"hi\\" \\/ back\\\\slash"], "rewards": [1]}',
    ]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    data = bucketing.load(tmp_path / "in", scores="rewards[]")
    for query, rows in [
        (Query("apple"), [0]),
        (Query("Apple", ignore_case=False), [0]),
        (Query("line\ntwo"), [1]),
        (Query("CAFÉ"), [2 - 1]),
        (Query("😊"), [2]),
        (Query("k"), [2, 3]),  # the Kelvin sign; "back"
        (Query('"hi" / back\\slash'), [3]),
        (Query("u0041"), []),  # the escape's own letters are not in the text
        (Query("prompt"), []),  # nor are the keys
    ]:
        assert search(data, query).rows.tolist() == rows, query


def test_grouped_rollouts_are_found_by_any_of_their_lines(tmp_path):
    rng = random.Random(5)
    lines = []
    for step in range(3):
        for prompt in range(12):
            lines.append({"input": f"question {prompt}", "output": text(rng), "score": rng.random(), "step": step})
    write_lines(tmp_path / "in" / "dump.jsonl", [json.dumps(line).encode() for line in lines])
    data = bucketing.load(tmp_path / "in", scores="score", group_by="input")
    assert len(data.scores) == 12 and data.layout.grouped
    texts = oracle_texts(data)
    for query in (Query("apple"), Query("中文"), Query("question 1"), Query(r"question 1\d", regex=True)):
        found = search(data, query)
        assert found.rows.tolist() == expected(texts, query), query
        assert 0 < len(found.rows) < 12 or query.text == "question 1"


def test_a_search_within_a_bucket_finds_only_its_rollouts(inputs):
    data = bucketing.load(inputs, scores="rewards[]")
    texts = oracle_texts(data)
    values = data.values("mean_reward")
    plan = bucketing.percentile_plan(values, "mean_reward", 3)
    ids = plan.assign(values)
    for bucket in range(3):
        members = np.flatnonzero(ids == bucket)
        for query in (Query("apple"), Query("café", regex=True)):
            found = search(data, query, members)
            assert found.rows.tolist() == expected(texts, query, members)
            assert found.total == len(members) == found.searched
            assert set(found.rows.tolist()) <= set(members.tolist())


@pytest.mark.parametrize("pattern", ["(", "a{2,1}", "[z-a]", "(?<=a+)b", "\\"])
def test_a_bad_regular_expression_is_one_line(inputs, pattern):
    data = bucketing.load(inputs, scores="rewards[]")
    with pytest.raises(BucketingError) as error:
        search(data, Query(pattern, regex=True))
    assert str(error.value).startswith("not a regular expression") and "\n" not in str(error.value)


def test_a_catastrophic_pattern_stops_at_the_budget_with_a_message(tmp_path):
    lines = [json.dumps({"prompt": "a" * 40 + "!", "responses": ["b"], "rewards": [i % 2]}).encode() for i in range(20)]
    write_lines(tmp_path / "in" / "a.jsonl", lines)
    data = bucketing.load(tmp_path / "in", scores="rewards[]")
    started = time.monotonic()
    found = search(data, Query("(a|aa)+$", regex=True), budget=0.5)  # 2**40 ways to fail on each line
    # (the regex module looks at the clock now and then: on a busy machine, later than the budget)
    assert time.monotonic() - started < 15
    assert found.stopped and "stopped after 0.5 s" in found.stopped and "\n" not in found.stopped


def test_an_empty_or_huge_query_is_refused_in_one_line(inputs):
    data = bucketing.load(inputs, scores="rewards[]")
    for query in (Query(""), Query("x" * 5000)):
        with pytest.raises(BucketingError) as error:
            search(data, query)
        assert "\n" not in str(error.value)


# --- order ----------------------------------------------------------------------------------


def test_hardest_first_follows_the_metric_s_direction():
    values = np.array([0.5, 0.1, np.nan, 0.9, 0.1, 0.7])
    rows = np.arange(6)
    assert ordered(rows, "hardest", values, higher_is_easier=True).tolist() == [1, 4, 0, 5, 3, 2]
    assert ordered(rows, "easiest", values, higher_is_easier=True).tolist() == [3, 5, 0, 1, 4, 2]
    assert ordered(rows, "hardest", values, higher_is_easier=False).tolist() == [3, 5, 0, 1, 4, 2]
    shuffled = ordered(rows, "random", values, seed=3)
    assert sorted(shuffled.tolist()) == list(range(6)) and shuffled.tolist() == ordered(rows, "random", seed=3).tolist()
    assert ordered(rows, "random", seed=4).tolist() != shuffled.tolist()


# --- ground truth ---------------------------------------------------------------------------


def test_ground_truth_is_found_at_each_known_field_or_a_named_one():
    assert ground_truth({"gts": "4", "answer": "5"}) == ("gts", "4")
    assert ground_truth({"reward_model": {"ground_truth": ["a", 1]}}) == ("reward_model.ground_truth", '["a",1]')
    assert ground_truth({"answer": {"x": 1}}) == ("answer", '{"x":1}')
    assert ground_truth({"label": 3}) == ("label", "3")
    assert ground_truth({"ground_truth": "g"}) == ("ground_truth", "g")
    assert ground_truth({"target": "t"}) == ("target", "t")
    assert ground_truth({"prompt": "p"}) is None
    assert ground_truth({"meta": {"gold": [1, 2]}}, "meta.gold") == ("meta.gold", "[1,2]")
    assert ground_truth({"items": [{"a": "z"}]}, "items.0.a") == ("items.0.a", "z")
    assert lookup({"a.b": {"c": 1}}, "a.b.c") == 1


# --- the app ----------------------------------------------------------------------------------


def metric_rows(folder: Path, count: int = 23) -> list[dict]:
    """``count`` rollouts with distinct mean rewards, each with a ground truth in another known field."""
    fields = ["gts", "reward_model", "answer", "label", "ground_truth", "target"]
    rows = []
    for i in range(count):
        field = fields[i % len(fields)]
        truth = {"ground_truth": f"truth-{i}"} if field == "reward_model" else f"truth-{i}"
        rows.append(
            {
                "prompt": [
                    {"role": "system", "content": f"**sys {i}** [link](http://example.invalid) :red[x]"},
                    {"role": "user", "content": f"# question {i}\nsecond line"},
                ],
                "responses": ["resp one", "resp two"],
                "rewards": [i / count, 1 - (i % 3) / 3],
                field: truth,
                "meta": {"gold": [i, "g"]},
            }
        )
    write_lines(folder / "a.jsonl", [json.dumps(row).encode() for row in rows])
    return rows


def shown_rollouts(app) -> list[int]:
    """The line numbers of the rollouts the preview shows (titled "[bucket · ]a.jsonl:N · ...")."""
    titles = [plain(e.label).split(" · ") for e in app.expander]
    return [int(next(part for part in title if part.startswith("a.jsonl:")).split(":")[1]) for title in titles]


def next_button(app):
    return next(b for b in app.button if b.label == "Next")


def test_hardest_first_pages_through_every_member_once(app, tmp_path):
    metric_rows(tmp_path / "in")
    load_folder(app, tmp_path / "in", scores="rewards[]")
    go(app, "buckets")
    app.slider(key="w_num_buckets").set_value(2).run()
    app.selectbox(key="w_preview_order").set_value("hardest").run()
    data = bucketing.load(tmp_path / "in", scores="rewards[]")
    values = data.values("mean_reward")
    ids = bucketing.percentile_plan(values, "mean_reward", 2).assign(values)
    for bucket, name in enumerate(app.selectbox(key="preview_bucket").options):
        app.selectbox(key="preview_bucket").set_value(name).run()
        members = np.flatnonzero(ids == bucket)
        seen: list[int] = []
        pages = -(-len(members) // 5)
        for page in range(pages):
            assert f"page **{page + 1}** of **{pages}**" in [m.value.split(" · ")[0] for m in app.markdown]
            seen += [line - 1 for line in shown_rollouts(app)]
            if page < pages - 1:
                next_button(app).click().run()
        assert next_button(app).disabled
        assert sorted(seen) == members.tolist() and len(seen) == len(set(seen))
        shown_values = values[seen]
        assert METRICS["mean_reward"].higher_is_easier
        assert shown_values.tolist() == sorted(shown_values.tolist())  # hardest (lowest mean) first
    app.selectbox(key="w_preview_order").set_value("easiest").run()
    first = [line - 1 for line in shown_rollouts(app)]
    assert values[first].tolist() == sorted(values[ids == ids[first[0]]].tolist(), reverse=True)[:5]


def test_the_search_box_filters_the_bucket_or_all_buckets(app, tmp_path):
    rows = metric_rows(tmp_path / "in")
    load_folder(app, tmp_path / "in", scores="rewards[]")
    go(app, "buckets")
    app.selectbox(key="preview_bucket").set_value(app.selectbox(key="preview_bucket").options[0]).run()
    app.text_input(key="w_preview_query").set_value("QUESTION 1").run()  # any case: 1, 10..19
    bucket_lines = shown_rollouts(app)
    assert bucket_lines and all(
        rows[line - 1]["prompt"][1]["content"].startswith("# question 1") for line in bucket_lines
    )
    app.toggle(key="w_preview_all").set_value(True).run()
    captions = [c.value for c in app.caption]
    assert "11 rollouts in all buckets match." in captions, captions
    assert any(m.value.startswith("page **1** of **3**") for m in app.markdown)
    app.toggle(key="w_preview_regex").set_value(True).run()
    app.text_input(key="w_preview_query").set_value(r"question 2\d?$").run()  # (?m) is not on: "$" ends the text
    assert "0 rollouts in all buckets match." in [c.value for c in app.caption]
    app.text_input(key="w_preview_query").set_value(r"(?m)question 2\d?$").run()
    assert "4 rollouts in all buckets match." in [c.value for c in app.caption]
    app.text_input(key="w_preview_query").set_value("(unclosed").run()
    assert not app.exception
    assert len(app.error) == 1 and "\n" not in app.error[0].value
    assert plain(app.error[0].value).startswith("not a regular expression: missing ), unterminated subpattern")
    app.toggle(key="w_preview_regex").set_value(False).run()  # the same text, plain: found as it is
    assert not app.error and "0 rollouts in all buckets match." in [c.value for c in app.caption]


def test_ground_truth_and_chat_messages_are_shown_literally(app, tmp_path):
    rows = metric_rows(tmp_path / "in", count=12)
    load_folder(app, tmp_path / "in", scores="rewards[]")
    go(app, "buckets")
    app.toggle(key="w_preview_all").set_value(True).run()
    app.selectbox(key="w_preview_order").set_value("easiest").run()
    seen_fields = set()
    for page in range(3):
        texts = [t.value for t in app.text]
        markdown = [m.value for m in app.markdown]
        for line in shown_rollouts(app):
            row = rows[line - 1]
            assert f"truth-{line - 1}" in texts
            assert row["prompt"][0]["content"] in texts and row["prompt"][1]["content"] in texts  # st.text: as it is
        seen_fields |= {plain(m) for m in markdown if m.startswith("**Ground truth**")}
        assert markdown.count("*system*") == markdown.count("*user*") == len(shown_rollouts(app))
        if page < 2:
            next_button(app).click().run()
    assert seen_fields == {
        f"**Ground truth** · {f}"
        for f in ("gts", "reward_model.ground_truth", "answer", "label", "ground_truth", "target")
    }
    app.text_input(key="w_truth_field").set_value("meta.gold").run()
    texts = [t.value for t in app.text]
    for line in shown_rollouts(app):
        assert f'[{line - 1},"g"]' in texts
    assert all(plain(m.value) == "**Ground truth** · meta.gold" for m in app.markdown if "Ground truth" in m.value)
    app.text_input(key="w_truth_field").set_value("no.such").run()
    assert not any("Ground truth" in m.value for m in app.markdown)
    assert any(plain(c.value) == "No field no.such in this rollout's line." for c in app.caption)


def test_compare_s_cell_preview_searches_and_pages(app):
    go(app, "compare")
    app.text_input(key="w_preview_query").set_value("paris").run()
    assert not app.exception and not app.error
    caption = next(c.value for c in app.caption if "match" in c.value)
    assert plain(caption).split(" in ")[1].startswith("the cell ")
    app.toggle(key="w_preview_all").set_value(True).run()
    data = bucketing.load(Path(app.session_state["source"].path))
    total = len(search(data, Query("paris")).rows)
    assert f"{total} rollouts in all rollouts match." in [c.value for c in app.caption]
    assert len(app.expander) == 5


# --- in a real browser ---------------------------------------------------------------------------


@pytest.mark.browser
def test_searching_and_paging_the_buckets_preview_in_a_browser(page):
    from playwright.sync_api import expect

    from .browser_support import TIMEOUT_MS, assert_no_error_shown, go_to, screenshot, settle
    from .conftest import SAMPLE

    data = bucketing.load(SAMPLE)
    values = data.values("mean_reward")
    ids = bucketing.percentile_plan(values, "mean_reward", 3).assign(values)
    found = search(data, Query("paris"), np.flatnonzero(ids == 0)).rows
    pages = -(-len(found) // 5)
    assert pages >= 2  # the sample has enough to page through
    table = data.table()
    where = {f"{f}:{n}" for f, n in zip(table["file"].to_numpy()[found], table["line"].to_numpy()[found])}

    go_to(page, "Buckets")
    box = page.get_by_role("textbox", name="Search prompts and responses")
    box.fill("paris")
    box.press("Enter")
    expect(page.get_by_text(f"{len(found)} rollouts in bucket easy match.")).to_be_visible(timeout=TIMEOUT_MS)
    settle(page)
    titles = page.locator('[data-testid="stExpander"] summary')
    seen: list[str] = []
    for number in range(1, pages + 1):
        expect(page.get_by_text(f"page {number} of {pages}", exact=False)).to_be_visible(timeout=TIMEOUT_MS)
        expect(titles).to_have_count(min(5, len(found) - 5 * (number - 1)), timeout=TIMEOUT_MS)
        seen += [title.strip().split("\n")[-1].split(" · ")[0] for title in titles.all_inner_texts()]  # after an icon
        if number == 1:
            screenshot(page, "buckets-preview-search")
        if number < pages:
            page.get_by_role("button", name="Next").click()
            settle(page)
    assert_no_error_shown(page, "the searched preview")
    assert sorted(seen) == sorted(where) and len(seen) == len(set(seen))
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
