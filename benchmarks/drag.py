"""Benchmark: how long the app takes, in Chromium, from a user's action on the Buckets page to the new bucket table
and sizes chart on screen.

    python benchmarks/drag.py                        # 1,000,000 rollouts, 20 of each action
    python benchmarks/drag.py --sample               # the bundled sample (240 rollouts)
    python benchmarks/drag.py --rollouts 15000 --rounds 10

Generates the rollouts once (``examples/make_rollouts.py``, one prompt a line, about 2 KB a line; kept in
``benchmarks/data/drag/``), starts the app as a user does (``streamlit run app.py`` on 127.0.0.1, a free port, that
folder allowed), opens the Buckets page on it by a link (``?folder=...&mode=thresholds&t=...``) in headless Chromium
(Playwright, Debian's chromium: never ``playwright install``) and times, ``--rounds`` times each:

- **drag**: a threshold line dragged 40 px with the mouse (left, then back right), from the button's release;
- **count**: the bucket count changed by one ("How many", the arrow keys on its slider), from the key's release;
- **metric**: another metric chosen in the Metric box (the seven in turn), from the click on it;

each until the bucket table shows new numbers and the sizes chart's bars agree with the table's counts. Both times are
taken in the page (``performance.now()``: the release in a capturing event listener, the end on the first animation
frame that finds the new table), so the driver's own latency is not counted. Prints each action's median and 90th
percentile, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bucketing.metrics import METRICS  # noqa: E402
from examples.make_rollouts import make_rollouts  # noqa: E402
from tests.browser_support import CHROMIUM, LAUNCH_ARGS, drag_line, settle, streamlit_server  # noqa: E402

SAMPLE = ROOT / "examples" / "rollouts"
WAIT_MS = 120_000  # the longest any one action may take (a first load of 1M rollouts included)
DRAG_PX = 40

# Installed in the page before the app's scripts. The release: the last pointer or key release after arm(). The end:
# the table's text and the sizes chart's bars read on every animation frame; once the table shows new numbers and the
# chart agrees with it, the end is when both first looked as they do then. The table is a canvas (Glide Data Grid) whose
# text also goes into an accessible copy that is updated later (about 200 ms later, measured): the canvas's pixels say
# when the new numbers were drawn, the accessible copy what they are.
PAGE_SCRIPT = """
(() => {
  const bench = (window.__bench = { armed: false, t0: null, t1: null });
  const released = () => { if (bench.armed) bench.t0 = performance.now(); };
  window.addEventListener("pointerup", released, true);
  window.addEventListener("keyup", released, true);
  const one = (selector) => { const found = document.querySelectorAll(selector); return found.length === 1 ? found[0] : null; };
  const pixels = () => {  // a hash of the table's canvas (null while an old and a new table are both there)
    const canvas = one('[data-testid="stDataFrame"] canvas[data-testid="data-grid-canvas"]');
    if (!canvas || !canvas.width || !canvas.height) return null;
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    for (let i = 0; i < data.length; i += 4) hash = (hash * 31 + data[i] + 7 * data[i + 1] + 13 * data[i + 2]) | 0;
    return hash;
  };
  const table = () => {  // the accessible copy's rows, and [name, count] of each
    const grid = one('[data-testid="stDataFrame"] table[role="grid"]');
    if (!grid) return null;
    const heads = Array.from(grid.querySelectorAll('th[role="columnheader"]')).map((th) => th.textContent.trim());
    const name = heads.findIndex((h) => h.startsWith("name")), count = heads.indexOf("count");
    const rows = Array.from(grid.querySelectorAll('tbody tr[role="row"]')).map((tr) =>
      Array.from(tr.querySelectorAll('[role="gridcell"]')).map((td) => td.textContent));
    return {
      text: rows.map((r) => r.join("|")).join("\\n"),
      counts: JSON.stringify(rows.map((r) => [r[name], Number(String(r[count]).replace(/,/g, ""))])),
    };
  };
  const shadows = () => Array.from(document.querySelectorAll(".stBidiComponent *")).filter((node) => node.shadowRoot);
  const sizes = () => {  // the sizes chart's bars, [name, count] of each (an SVG in a component, or a Plotly chart)
    const svgs = shadows().flatMap((host) => Array.from(host.shadowRoot.querySelectorAll('svg[data-testid="bucket-sizes"]')));
    if (svgs.length === 1) {
      const bars = Array.from(svgs[0].querySelectorAll("g.bs-bar"));
      return JSON.stringify(bars.map((g) => [g.dataset.name, Number(g.dataset.count)]));
    }
    const plot = svgs.length ? null : one(".st-key-sizes .js-plotly-plot");
    const data = plot && plot._fullData && plot._fullData[0];
    return data ? JSON.stringify(Array.from(data.x).map((x, i) => [String(x), Number(data.y[i])])) : null;
  };
  bench.ready = () => table() !== null && pixels() !== null && sizes() !== null;
  bench.arm = () => {
    const before = table().text;
    const seen = { pixels: pixels(), sizes: sizes(), pixelsAt: 0, sizesAt: 0 };
    bench.t0 = bench.t1 = null;
    bench.armed = true;
    const tick = () => {
      if (!bench.armed) return;
      const now = performance.now(), shown = pixels(), bars = sizes();
      if (shown !== seen.pixels) Object.assign(seen, { pixels: shown, pixelsAt: now });
      if (bars !== seen.sizes) Object.assign(seen, { sizes: bars, sizesAt: now });
      const rows = bench.t0 === null ? null : table();
      if (rows && shown !== null && rows.text !== before && bars === rows.counts) {
        bench.t1 = Math.max(bench.t0, seen.pixelsAt, seen.sizesAt);
        bench.armed = false;
      } else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  };
})();
"""


def make_data(folder: Path, rollouts: int) -> Path:
    """``rollouts`` generated rollouts in 8 files, made once."""
    done = folder / ".complete"
    if not done.exists():
        print(f"generating {rollouts:,} rollouts in {folder} …", flush=True)
        make_rollouts(folder, rollouts=rollouts, files=8, seed=0)
        done.touch()
    return folder


def timed(tab, action) -> float:
    """Milliseconds from the release that ends ``action()`` to the new table and sizes chart on screen."""
    settle(tab, timeout=WAIT_MS)
    tab.wait_for_function("window.__bench.ready()", timeout=WAIT_MS)  # the table and the sizes chart drawn
    tab.evaluate("window.__bench.arm()")
    action()
    tab.wait_for_function("window.__bench.t1 !== null", timeout=WAIT_MS)
    return tab.evaluate("window.__bench.t1 - window.__bench.t0")


def summary(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    shown = ", ".join(f"{t:.0f}" for t in times)
    return f"{name:<16} median {statistics.median(times):6.0f} ms   p90 {p90:6.0f} ms   (n={len(times)}: {shown})"


ACTIONS = ("drag", "count", "metric")


class Tab:
    """One app (a server started in ``app``, a checkout of this repository) and one browser tab on its Buckets page."""

    def __init__(self, stack: ExitStack, browser, app: Path, folder: Path, log: Path):
        self.app = app
        server = stack.enter_context(streamlit_server(log, [folder], cwd=app))
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        stack.callback(context.close)
        context.add_init_script(PAGE_SCRIPT)
        self.tab = context.new_page()
        self.tab.set_default_timeout(WAIT_MS)
        view = {"folder": str(folder), "metric": "mean_reward", "mode": "thresholds", "t": "0.3,0.7"}
        for _ in range(2):  # a fresh server's first run is the page alone, without app.py; then the link's view
            start = time.perf_counter()
            self.tab.goto(f"{server.url}/buckets?{urlencode(view)}")
            self.tab.locator('svg[data-testid="threshold-drag"]').wait_for(timeout=WAIT_MS)
            settle(self.tab, timeout=WAIT_MS)
        print(f"{app}: the Buckets page open in {time.perf_counter() - start:.1f} s", flush=True)

    def drag(self, round_: int) -> float:
        return timed(self.tab, lambda: drag_line(self.tab, 0, -DRAG_PX if round_ % 2 == 0 else DRAG_PX))

    def count(self, round_: int) -> float:
        slider = self.tab.locator('[data-testid="stSlider"]').filter(has=self.tab.get_by_text("How many"))
        thumb = slider.get_by_role("slider")
        return timed(self.tab, lambda: thumb.press("ArrowRight" if round_ % 2 == 0 else "ArrowLeft"))

    def metric(self, round_: int) -> float:
        metrics = [m for m in METRICS if m != "mean_reward"] + ["mean_reward"]  # each in turn: the first visits cold
        option = self.tab.get_by_role("option", name=metrics[round_ % len(metrics)], exact=False).first
        settle(self.tab, timeout=WAIT_MS)
        self.tab.locator('[data-testid="stSelectbox"]').filter(has=self.tab.get_by_text("Metric", exact=True)).click()
        option.wait_for(timeout=WAIT_MS)  # the list open before the clock starts: the click on the option is timed
        return timed(self.tab, option.click)

    def to_count_mode(self) -> None:
        settle(self.tab, timeout=WAIT_MS)
        self.tab.get_by_text("By bucket count", exact=True).click()
        settle(self.tab, timeout=WAIT_MS)


def run(apps: list[Path], folder: Path, rounds: int, actions: list[str], logs: Path) -> dict[tuple[Path, str], list]:
    """Each action ``rounds`` times in each app, the apps in turn (A B A B …), after two rounds not counted."""
    from playwright.sync_api import sync_playwright

    times: dict[tuple[Path, str], list[float]] = {(app, action): [] for app in apps for action in actions}
    with ExitStack() as stack:
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        stack.callback(browser.close)
        tabs = [Tab(stack, browser, app, folder, logs / f"server-{i}.log") for i, app in enumerate(apps)]
        for action in ACTIONS:
            if action not in actions:
                continue
            if action == "count":
                for tab in tabs:
                    tab.to_count_mode()
            for round_ in range(-2, rounds):
                for tab in tabs:
                    took = getattr(tab, action)(round_)
                    if round_ >= 0:
                        times[tab.app, action].append(took)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rollouts", type=int, default=1_000_000)
    parser.add_argument("--sample", action="store_true", help="the bundled sample (240 rollouts) instead")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--actions", default=",".join(ACTIONS), help="which of drag,count,metric (default: all)")
    parser.add_argument(
        "--app",
        type=Path,
        action="append",
        help="a checkout of the app to time (default: this one); given twice, the two are timed in turn",
    )
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "drag")
    args = parser.parse_args()
    actions = [a for a in args.actions.split(",") if a]
    if not set(actions) <= set(ACTIONS):
        parser.error(f"--actions takes some of {', '.join(ACTIONS)}")
    folder = SAMPLE if args.sample else make_data(args.data / str(args.rollouts), args.rollouts)
    apps = [app.resolve() for app in args.app or [ROOT]]
    times = run(apps, folder, args.rounds, actions, args.data)
    print(f"{'the sample' if args.sample else f'{args.rollouts:,} rollouts'}, {args.rounds} rounds:")
    for (app, action), values in times.items():
        print(summary(f"{action} {app.name}" if len(apps) > 1 else action, values))


if __name__ == "__main__":
    main()
