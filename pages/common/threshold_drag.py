"""A histogram with vertical threshold lines the user drags; the new values come back to Python.

Plotly's shape edits never reach Python, so this is a small inline
components-v2 element: an SVG drawn from pre-binned counts. Dragging moves a
line locally; releasing it sends ``{"values": [...sorted], "seq": n}`` as the
``thresholds`` state (``seq`` tells a new drag from the last one).
Double-clicking the chart adds a line there. Every bucket region is labelled: inside it where the
label fits, else above the chart with a leader (the layout is worked out in Python: charts.drag_data).
Once drawn, it tells Python (the ``drawn`` trigger) when the page's preview shows another plan than it does.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

# What the SVG components share (their JS is this followed by their own): el() adds an SVG element; addDownloads() puts
# two buttons above a chart's SVG that save it as drawn (styles inlined: the file looks the same anywhere), as SVG or PNG.
SVG_JS = """
const NS = "http://www.w3.org/2000/svg";
const el = (name, attrs, parent, text) => {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  parent.appendChild(node);
  return node;
};
function addDownloads(parentElement, svg, W, H, fileName, prefix) {
  parentElement.querySelector(".td-downloads")?.remove();
  const bar = document.createElement("div");
  bar.className = "td-downloads";
  parentElement.insertBefore(bar, svg);
  const STYLED = ["fill", "stroke", "stroke-width", "opacity", "font-size", "font-weight", "font-family"];
  const svgText = () => {
    const clone = svg.cloneNode(true);
    const from = [svg, ...svg.querySelectorAll("*")], to = [clone, ...clone.querySelectorAll("*")];
    from.forEach((node, i) => {
      const style = getComputedStyle(node);
      to[i].setAttribute("style", STYLED.map((p) => `${p}:${style.getPropertyValue(p)}`).join(";"));
    });
    clone.setAttribute("xmlns", NS);
    clone.setAttribute("width", W);
    clone.setAttribute("height", H);
    return new XMLSerializer().serializeToString(clone);
  };
  const save = (href, extension) => {
    const a = document.createElement("a");
    a.href = href;
    a.download = `${fileName}.${extension}`;
    parentElement.appendChild(a);
    a.click();
    a.remove();
  };
  const background = () => {  // the page's, behind the chart (the PNG has no transparency: it is read anywhere)
    // from the chart up, out of the component's shadow root (whose root is no element: getComputedStyle refuses it)
    for (let node = svg; node; node = node.parentElement || node.getRootNode().host) {
      const color = getComputedStyle(node).backgroundColor;
      if (color && color !== "transparent" && !color.startsWith("rgba(0, 0, 0, 0")) return color;
    }
    return "#ffffff";
  };
  const button = (label, onClick) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "td-download";
    b.textContent = `Download ${label}`;
    b.setAttribute("data-testid", `${prefix}-download-${label.toLowerCase()}`);
    b.addEventListener("click", onClick);
    bar.appendChild(b);
  };
  button("SVG", () => save(URL.createObjectURL(new Blob([svgText()], { type: "image/svg+xml" })), "svg"));
  button("PNG", () => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement("canvas");
      canvas.width = W * 2;
      canvas.height = H * 2;
      const g = canvas.getContext("2d");
      g.fillStyle = background();
      g.fillRect(0, 0, canvas.width, canvas.height);
      g.drawImage(image, 0, 0, canvas.width, canvas.height);
      save(canvas.toDataURL("image/png"), "png");
    };
    image.src = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svgText());
  });
}
"""
DOWNLOADS_CSS = """
.td-downloads { display: flex; justify-content: flex-end; gap: 6px; }
.td-download { font: inherit; font-size: 12px; padding: 1px 8px; border-radius: 4px; cursor: pointer;
               color: var(--st-text-color, #31333f); background: transparent;
               border: 1px solid color-mix(in srgb, var(--st-text-color, #31333f) 30%, transparent); }
"""

CSS = (
    """
.td-svg { width: 100%; height: auto; display: block; user-select: none; touch-action: none;
          font-family: var(--st-font, sans-serif); }
.td-bar { fill: var(--st-text-color, #31333f); opacity: 0.55; }
.td-axis { fill: var(--st-text-color, #31333f); font-size: 13px; opacity: 0.75; }
.td-axis-title { fill: var(--st-text-color, #31333f); font-size: 13px; }
.td-region-label { fill: var(--st-text-color, #31333f); font-size: 13px; font-weight: 600; }
.td-leader { stroke-width: 1.5; }
.td-line line.td-rule { stroke: var(--st-primary-color, #ff4b4b); stroke-width: 3; }
.td-line rect.td-hit { fill: transparent; cursor: ew-resize; }
.td-line rect.td-knob { fill: var(--st-primary-color, #ff4b4b); cursor: ew-resize; }
.td-line rect.td-pill { fill: var(--st-primary-color, #ff4b4b); }
.td-line text { fill: #ffffff; font-size: 13px; font-weight: 600; }
.td-line.dragging line.td-rule { stroke-width: 4; }
"""
    + DOWNLOADS_CSS
)


JS = (
    SVG_JS
    + """
const asked = new WeakMap();  // per chart: the plan whose preview it asked for last
const afterRun = (then) => {  // once the app's script run (the one drawing this) has ended
  const app = document.querySelector('[data-testid="stApp"]');
  const ended = () => !app || app.getAttribute("data-test-script-state") !== "running";
  if (ended()) return void setTimeout(then);
  const watch = new MutationObserver(() => {
    if (ended()) {
      watch.disconnect();
      then();
    }
  });
  watch.observe(app, { attributes: true, attributeFilter: ["data-test-script-state"] });
};

export default function (component) {
  const { data, setStateValue, setTriggerValue, parentElement } = component;
  const ROW = 18, rows = data.label_rows;  // rows of region labels above the chart (too narrow inside)
  const W = data.frame.width, L = data.frame.left, R = data.frame.right, T = 34 + rows * ROW, H = 318 + rows * ROW, B = 48;
  const [lo, hi] = data.domain;  // in axis units: log10 of the values on a log axis (data.log)
  const unit = (v) => (data.log ? Math.log10(Math.max(v, 10 ** lo)) : v);
  const real = (u) => (data.log ? Number((10 ** u).toPrecision(3)) : u);
  const px = (u) => L + ((u - lo) / (hi - lo)) * (W - L - R);
  const value = (x) => lo + ((x - L) / (W - L - R)) * (hi - lo);
  const top = Math.max(1, ...data.bars.map((b) => b.count));
  const py = (c) => H - B - (c / top) * (H - T - B);
  const snap = (v) => Number((Math.round(Math.min(hi, Math.max(lo, v)) / data.step) * data.step).toFixed(data.digits));

  parentElement.querySelector("svg.td-svg")?.remove();
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, class: "td-svg", "data-testid": "threshold-drag" }, parentElement);
  const clamp = (v) => Math.min(hi, Math.max(lo, v));
  for (const r of data.regions) {
    const x0 = px(clamp(r.from)), x1 = Math.max(x0, px(clamp(r.to))), band = T - 26;
    el("rect", { x: x0, y: band, width: x1 - x0, height: H - B - band, fill: r.color, opacity: 0.22 }, svg);
    if (r.inside) {
      el("text", { x: (x0 + x1) / 2, y: T - 10, "text-anchor": "middle", class: "td-region-label" }, svg, r.label);
    } else {  // above the chart, with a leader down to the region
      const y = band - 6 - r.row * ROW;
      el("line", { x1: r.at, y1: y + 3, x2: (x0 + x1) / 2, y2: band + 6, stroke: r.color, class: "td-leader" }, svg);
      el("circle", { cx: (x0 + x1) / 2, cy: band + 6, r: 3, fill: r.color }, svg);
      el("text", { x: r.at, y, "text-anchor": "middle", class: "td-region-label td-outside" }, svg, r.label);
    }
  }
  for (const b of data.bars) {
    const x0 = px(b.left), x1 = px(b.right);
    el("rect", { x: x0, y: py(b.count), width: Math.max(2, x1 - x0 - 1), height: H - B - py(b.count), class: "td-bar" }, svg);
  }
  for (const t of data.ticks) el("text", { x: px(t.at), y: H - 28, "text-anchor": "middle", class: "td-axis" }, svg, t.label);
  el("text", { x: L + (W - L - R) / 2, y: H - 6, "text-anchor": "middle", class: "td-axis-title" }, svg, data.axis_title);

  const values = data.lines.slice();
  let dragging = null;
  const toSvg = (evt) => {
    const p = svg.createSVGPoint();
    p.x = evt.clientX; p.y = evt.clientY;
    return p.matrixTransform(svg.getScreenCTM().inverse());
  };
  const send = () => setStateValue("thresholds", { values: values.slice().sort((a, b) => a - b), seq: Date.now() });
  const place = (g, v) => {
    const x = px(unit(v));
    g.querySelector(".td-rule").setAttribute("x1", x);
    g.querySelector(".td-rule").setAttribute("x2", x);
    g.querySelector(".td-hit").setAttribute("x", x - 12);
    g.querySelector(".td-knob").setAttribute("x", x - 7);
    const label = g.querySelector("text");
    label.setAttribute("x", x);
    label.textContent = String(Number(v.toPrecision(6)));
    // white on a pill of the line's colour, at the top of the plot: readable over bars, in either theme
    const width = label.getComputedTextLength() + 12, pill = g.querySelector(".td-pill");
    pill.setAttribute("x", Math.min(W - width, Math.max(0, x - width / 2)));
    pill.setAttribute("width", width);
    label.setAttribute("x", Number(pill.getAttribute("x")) + width / 2);
  };
  values.forEach((v, i) => {
    const g = el("g", { class: "td-line", "data-index": i, "data-testid": `threshold-line-${i}` }, svg);
    el("line", { class: "td-rule", y1: T, y2: H - B }, g);
    el("rect", { class: "td-hit", y: T, width: 24, height: H - B - T }, g);
    el("rect", { class: "td-knob", y: (T + H - B) / 2 - 14, width: 14, height: 28, rx: 4 }, g);
    el("rect", { class: "td-pill", y: T + 2, height: 20, rx: 10 }, g);
    el("text", { y: T + 16, "text-anchor": "middle" }, g);
    place(g, v);
    g.addEventListener("pointerdown", (evt) => {
      evt.preventDefault();
      dragging = { g, i };
      g.classList.add("dragging");
      svg.setPointerCapture(evt.pointerId);
    });
  });
  svg.addEventListener("pointermove", (evt) => {
    if (!dragging) return;
    values[dragging.i] = real(snap(value(toSvg(evt).x)));
    place(dragging.g, values[dragging.i]);
  });
  const release = (evt) => {
    if (!dragging) return;
    dragging.g.classList.remove("dragging");
    dragging = null;
    if (svg.hasPointerCapture(evt.pointerId)) svg.releasePointerCapture(evt.pointerId);
    send();
  };
  svg.addEventListener("pointerup", release);
  svg.addEventListener("pointercancel", release);
  addDownloads(parentElement, svg, W, H, data.file_name, "threshold");
  // The preview (its own fragment) follows the plan drawn here: once this chart shows a plan the preview does not,
  // ask for it (a second, separate rerun: the drag's result is on screen before the preview is rebuilt), once the run
  // that drew the chart has ended (a request sent during it would carry the widgets of the run before).
  if (data.plan_key !== data.preview_key && asked.get(parentElement) !== data.plan_key) {
    asked.set(parentElement, data.plan_key);
    afterRun(() => setTriggerValue("drawn", data.plan_key));
  }

  svg.addEventListener("dblclick", (evt) => {
    values.push(real(snap(value(toSvg(evt).x))));
    send();
  });
}
"""
)

_component = st.components.v2.component("rollout_bucketer.threshold_drag", css=CSS, js=JS)


def threshold_drag(
    *,
    key: str,
    bars: list[dict],
    lines: list[float],
    regions: list[dict],
    label_rows: int,
    frame: dict,
    domain: tuple[float, float],
    step: float,
    digits: int,
    ticks: list[dict],
    axis_title: str,
    log: bool,
    file_name: str,
    plan_key: str,
    preview_key: str | None,
    on_drawn: Callable[[], None],
) -> None:
    """Draw the chart; what the user sends, ``{"values": [...], "seq": n}``, arrives in ``st.session_state[key]``.

    ``regions`` and ``label_rows`` as laid out by pages.common.charts.drag_data, in ``frame``'s units. Once the chart
    shows a plan (``plan_key``) other than the preview's (``preview_key``), it says so (the ``drawn`` trigger, which
    calls ``on_drawn``): the page's preview is rebuilt in a run of its own, after the chart's."""
    _component(
        key=key,
        data={
            "bars": bars,
            "lines": lines,
            "regions": regions,
            "label_rows": label_rows,
            "frame": frame,
            "domain": list(domain),
            "step": step,
            "digits": digits,
            "ticks": ticks,
            "axis_title": axis_title,
            "log": log,
            "file_name": file_name,
            "plan_key": plan_key,
            "preview_key": preview_key,
        },
        default={"thresholds": None},
        on_thresholds_change=lambda: None,
        on_drawn_change=on_drawn,
    )
