"""Helpers for the browser tests: start the app as a real server, drive chromium, read what the pages show."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT
from .needs import CHROMIUM, browser_problem, missing  # noqa: F401  (CHROMIUM: for the browser fixture)

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # One renderer process for every tab: the tabs then share Streamlit's compiled scripts, and a second tab
    # costs a page load, not a compile (the five-sessions test: 41 CPU s instead of 54).
    "--renderer-process-limit=1",
]
SCREENSHOTS = ROOT / "tests" / "screenshots"
TIMEOUT_MS = 30_000  # any single wait in a page
APP = '[data-testid="stApp"]'
STATUS = '[data-testid="stStatusWidget"]'
ERROR_BANNER = "This app has encountered an error"


def require_browser() -> None:
    """Skip (or, under CI, fail) when chromium or the playwright package is missing: the rule in needs.py."""
    problem = browser_problem()
    if problem:
        missing(problem)


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def server_env(allowed_roots: list[Path]) -> dict[str, str]:
    """This environment minus STREAMLIT_* overrides (so the repo's config is what applies), plus the allowed roots."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    env["BUCKETING_ALLOWED_ROOTS"] = os.pathsep.join(str(p) for p in allowed_roots)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def streamlit_server(
    log: Path, allowed_roots: list[Path], *, address: str | None = "127.0.0.1", cwd: Path = ROOT
) -> Iterator[Server]:
    """``streamlit run app.py`` on a free port; yields once /_stcore/health says ok; terminates (then kills) it."""
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    if address is not None:
        args += ["--server.address", address]
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(args, cwd=cwd, env=server_env(allowed_roots), stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, process, log)
    try:
        wait_healthy(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"streamlit did not answer /_stcore/health within {timeout} s:\n{server.log_tail()}")


def listening_addresses(port: int) -> set[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every local address with a TCP socket in LISTEN state on ``port`` (from /proc/net/tcp{,6}, else ``ss``)."""
    found: set = set()
    tables = [(Path("/proc/net/tcp"), 4), (Path("/proc/net/tcp6"), 6)]
    if not tables[0][0].exists():
        return _listening_ss(port)
    for table, version in tables:
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            host, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(host)
            if version == 4:
                found.add(ipaddress.IPv4Address(raw[::-1]))
            else:  # four little-endian 32-bit words
                found.add(ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))
    return found


def _listening_ss(port: int) -> set:
    if not shutil.which("ss"):
        pytest.skip("neither /proc/net/tcp nor ss is available to list listening sockets")
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        local = line.split()[3]
        host, _, port_text = local.rpartition(":")
        if port_text == str(port):
            host = host.strip("[]").split("%")[0]
            found.add(ipaddress.ip_address("0.0.0.0" if host == "*" else host))
    return found


# --- the page ------------------------------------------------------------------------------


def settle(page, timeout: int = TIMEOUT_MS) -> None:
    """Wait until the app is drawn and no script run is going on (a rerun starts ~150 ms after an interaction)."""
    from playwright.sync_api import expect

    page.locator(APP).wait_for(state="visible", timeout=timeout)
    page.wait_for_timeout(250)
    expect(page.locator(APP)).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    expect(page.locator(STATUS)).to_have_count(0, timeout=timeout)


def wait_until(condition: Callable[[], object], timeout: float = 20, message: str | Callable[[], str] = "") -> object:
    """Poll ``condition`` until it returns something truthy (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {message() if callable(message) else message}")
        time.sleep(0.1)


def open_page(page, server: Server, title: str | None = None, path: str = "") -> None:
    page.goto(f"{server.url}/{path}")
    settle(page)
    if title:
        from playwright.sync_api import expect

        expect(page.locator("h1").first).to_have_text(title, timeout=TIMEOUT_MS)
    settle(page)


def go_to(page, title: str) -> None:
    """Switch page by the sidebar link, as a user does (keeps the session and its state)."""
    from playwright.sync_api import expect

    page.locator('[data-testid="stSidebarNav"] a', has_text=title).click()
    expect(page.locator("h1").first).to_have_text(title, timeout=TIMEOUT_MS)
    settle(page)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def app_text(page) -> str:
    return page.locator(APP).inner_text()


def assert_no_error_shown(page, where: str) -> None:
    text = app_text(page)
    assert "Traceback" not in text, f"{where}: the page shows a Python traceback:\n{text[:3000]}"
    assert page.locator('[data-testid="stException"]').count() == 0, (
        f"{where}: the page shows an exception:\n{text[:3000]}"
    )
    assert ERROR_BANNER not in text, f"{where}: the page shows an error:\n{text[:3000]}"


def export_done(page, wrote: str, shot: str) -> None:
    """Wait for the Export page's success message (``wrote`` in it), check no error shows, take a screenshot."""
    success = page.locator('[data-testid="stAlertContentSuccess"]')
    expect(success).to_contain_text(wrote, timeout=60_000)
    settle(page)
    assert_no_error_shown(page, f"Export after {shot}")
    screenshot(page, shot)


# --- the Buckets page ----------------------------------------------------------------------

CHART = 'svg[data-testid="threshold-drag"]'


def line_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(f"{CHART} g.td-line text").all_text_contents()]


def region_labels(page) -> list[str]:
    return [t.strip() for t in page.locator(f"{CHART} text.td-region-label").all_text_contents()]


def sizes(page) -> dict[str, int]:
    """Bucket name -> count, from the sizes bar chart's bars (what Python sent).

    Empty while a rerun briefly shows the old and the new chart side by side.
    """
    charts = page.locator('svg[data-testid="bucket-sizes"]')
    if charts.count() != 1:
        return {}
    bars = charts.locator("g.bs-bar").evaluate_all("els => els.map(g => [g.dataset.name, g.dataset.count])")
    return {str(name): int(count) for name, count in bars}


def mode_selected(page) -> str:
    radio = page.locator('[data-testid="stRadio"]').filter(has=page.get_by_role("radiogroup", name="Buckets"))
    return radio.locator('[data-testid="stRadioOption"][data-selected="true"]').inner_text().strip()


def threshold_inputs(page) -> list[float]:
    """The values in the "Threshold N" number inputs (drawn by Python in thresholds mode)."""
    values = page.locator('input[aria-label^="Threshold "]').evaluate_all("els => els.map(e => e.value)")
    return [float(v) for v in values]


def center(box: dict) -> tuple[float, float]:
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def axis_scale(page) -> tuple[float, float]:
    """(value at screen x = 0, value per screen pixel) from the chart's axis tick labels."""
    ticks = []
    for tick in page.locator(f"{CHART} text.td-axis").all():
        x, _ = center(tick.bounding_box())
        ticks.append((x, float(tick.text_content())))
    (x0, v0), (x1, v1) = min(ticks), max(ticks)
    per_px = (v1 - v0) / (x1 - x0)
    return v0 - x0 * per_px, per_px


def drag_line(page, index: int, dx: float, steps: int = 12) -> tuple[float, float]:
    """Drag threshold line ``index`` by its knob ``dx`` screen pixels with the real mouse; returns the start point."""
    page.bring_to_front()  # tabs share a window (new_tab): the mouse reaches a tab behind others late
    knob = page.locator(f'{CHART} g[data-testid="threshold-line-{index}"] rect.td-knob')
    knob.scroll_into_view_if_needed()
    x, y = center(knob.bounding_box())
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, steps + 1):
        page.mouse.move(x + dx * step / steps, y + (2 if step % 2 else 0))
    page.mouse.move(x + dx, y)
    page.mouse.up()
    return x, y


def assert_regions_match(regions: list[str], counts: dict[str, int]) -> None:
    """Each region label on the chart ("easy (76)"; narrow regions have none) agrees with the sizes chart."""
    assert regions, "no region labels on the threshold chart"
    for label in regions:
        found = re.fullmatch(r"(.+) \(([\d,]+)\)", label)
        assert found, f"odd region label {label!r}"
        name, count = found.group(1), int(found.group(2).replace(",", ""))
        assert counts.get(name) == count, f"chart says {label!r}, the sizes chart says {counts}"


def data_caption(page):
    """The sidebar's line about the loaded data ("Data: rollouts · 12 files")."""
    return page.locator('[data-testid="stSidebar"] [data-testid="stCaptionContainer"]').first


def expect(locator):
    """Playwright's expect, imported only when a browser test runs (the module imports without Playwright)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@contextmanager
def new_tab(browser, width: int = 1400, height: int = 1000, scheme: str = "light"):
    """A tab for a Streamlit session of its own (the caller opens a page in it); every URL it requests in
    ``tab.requests``. ``scheme`` "dark": the system's dark mode, which the app's theme follows.

    Tabs are reused within a browser: one given back leaves the app (which ends its session on the server) and has
    its storage emptied; the next ``new_tab`` opens the app in it anew, a new session. Loading the app in a tab whose
    renderer has already compiled Streamlit's scripts costs about a third of the CPU of a new tab (2 s against 6 on
    2 cores), and page loads are most of what the browser tests cost.
    """
    idle = browser.__dict__.setdefault("idle_tabs", [])
    in_use = browser.__dict__.setdefault("tabs_in_use", [])
    if "shared_context" not in browser.__dict__:
        browser.shared_context = browser.new_context()
    tab = idle.pop() if idle else browser.shared_context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.set_viewport_size({"width": width, "height": height})
    tab.emulate_media(color_scheme=scheme)
    tab.requests = []

    def record(request) -> None:
        tab.requests.append(request.url)

    tab.on("request", record)
    # The tabs share a window, and the mouse reaches a tab behind others late (a drag, a hover) or not at all:
    # the newest tab in use is in front, and when it is given back, the one opened before it again.
    in_use.append(tab)
    tab.bring_to_front()
    try:
        yield tab
    finally:
        in_use.remove(tab)
        if not tab.is_closed():
            tab.remove_listener("request", record)
            leave(tab)
            idle.append(tab)
        if in_use and not in_use[-1].is_closed():
            in_use[-1].bring_to_front()


def leave(tab) -> None:
    """Leave the app in this tab (its Streamlit session ends) and empty the storage it kept (sidebar state)."""
    with contextlib.suppress(Exception):  # a page without storage: nothing to clear
        tab.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
    tab.goto("about:blank")
