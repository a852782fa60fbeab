// Two small charts drawn as inline SVG from plain numbers: stacked bar panels sharing one x axis,
// and a heatmap grid. No library and no network. The SVG is drawn at the container's own pixel
// width, so the text stays readable on a phone and on a wide screen; callers redraw on resize.
// Each chart is an image with a name; the numbers themselves belong in a table next to it.

const NS = "http://www.w3.org/2000/svg";
const FONT = 12;
let ids = 0;

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const tip = (text) => svg("title", {}, text);

function frame(width, height, label) {
  const id = `chart-${++ids}`;
  return svg(
    "svg",
    { class: "chart__svg", width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": id },
    svg("title", { id }, label),
  );
}

/**
 * Bar panels stacked over one shared row of x labels.
 * @param {object} o
 * @param {number} o.width  pixels
 * @param {string} o.label  what the whole picture shows, for assistive technology
 * @param {string[]} o.labels  one per bar, shown under the last panel (thinned to fit)
 * @param {{name: string, values: (number|null)[], max: number, ticks: number[], format: (v:number)=>string,
 *          titles: string[], className: string, height: number}[]} o.panels
 */
export function barPanels({ width, label, labels, panels }) {
  const left = 46;
  const right = 8;
  const gap = 40; // room for each panel's name above it, clear of the ticks of the one before
  const bottom = 22;
  const plot = Math.max(10, width - left - right);
  const band = plot / Math.max(1, labels.length);
  const barWidth = Math.max(2, Math.min(28, band * 0.72));
  const height = panels.reduce((sum, p) => sum + gap + p.height, 0) + bottom;
  const root = frame(width, height, label);
  let top = 0;
  for (const p of panels) {
    top += gap;
    const g = svg("g", { class: `chart__panel ${p.className ?? ""}`, transform: `translate(0 ${top})` });
    g.append(svg("text", { x: 0, y: -14, class: "chart__name" }, p.name));
    const y = (v) => p.height - (Math.min(v, p.max) / p.max) * p.height;
    for (const t of p.ticks) {
      g.append(svg("line", { x1: left, x2: left + plot, y1: y(t), y2: y(t), class: t === 0 ? "chart__axis" : "chart__grid" }));
      g.append(svg("text", { x: left - 6, y: y(t) + FONT / 3, class: "chart__tick", "text-anchor": "end" }, p.format(t)));
    }
    p.values.forEach((v, i) => {
      const x = left + i * band + (band - barWidth) / 2;
      if (v === null || v === undefined) {
        g.append(svg("rect", { x, y: p.height - 2, width: barWidth, height: 2, class: "chart__none" }, tip(p.titles[i])));
        return;
      }
      const h = Math.max(v > 0 ? 1 : 0, p.height - y(v));
      g.append(svg("rect", { x, y: p.height - h, width: barWidth, height: h, rx: Math.min(3, barWidth / 4), class: "chart__bar" }, tip(p.titles[i])));
    });
    root.append(g);
    top += p.height;
  }
  const every = Math.max(1, Math.ceil(labels.length / Math.max(1, Math.floor(plot / 52))));
  labels.forEach((text, i) => {
    if (i % every !== 0) return;
    const x = left + i * band + band / 2;
    root.append(svg("text", { x, y: top + 16, class: "chart__tick", "text-anchor": "middle" }, text));
  });
  return root;
}

/** A colour from pale to deep teal for a share 0..1 (a sequential scale, readable without hue). */
export function shade(share) {
  const low = [222, 241, 237];
  const high = [11, 94, 88];
  const t = Math.max(0, Math.min(1, share));
  const mix = low.map((c, i) => Math.round(c + (high[i] - c) * t));
  return `rgb(${mix.join(" ")})`;
}

/**
 * A grid of cells shaded by a share 0..1 (null: nothing to measure, drawn hatched).
 * @param {object} o
 * @param {number} o.width
 * @param {string} o.label
 * @param {string[]} o.rows  row labels, top to bottom
 * @param {string[]} o.cols  column labels (thinned to fit)
 * @param {(r: number, c: number) => {share: number|null, title: string}} o.cell
 * @param {number} o.cellHeight
 */
export function heatGrid({ width, label, rows, cols, cell, cellHeight }) {
  const left = 44;
  const top = 20;
  const legendHeight = 44;
  const plot = Math.max(10, width - left - 4);
  const w = plot / cols.length;
  const h = cellHeight;
  const gridHeight = rows.length * h;
  const root = frame(width, top + gridHeight + legendHeight, label);
  const hatch = `hatch-${++ids}`;
  root.append(
    svg(
      "defs",
      {},
      svg(
        "pattern",
        { id: hatch, width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
        svg("rect", { width: 6, height: 6, fill: "#f6f7f9" }),
        svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#c3c9d2", "stroke-width": 2 }),
      ),
    ),
  );
  const every = Math.max(1, Math.ceil(cols.length / Math.max(1, Math.floor(plot / 30))));
  cols.forEach((text, c) => {
    if (c % every === 0) root.append(svg("text", { x: left + c * w + (every === 1 ? w / 2 : 0), y: 13, class: "chart__tick", "text-anchor": every === 1 ? "middle" : "start" }, text));
  });
  rows.forEach((text, r) => {
    root.append(svg("text", { x: left - 6, y: top + r * h + h / 2 + FONT / 3, class: "chart__tick", "text-anchor": "end" }, text));
    cols.forEach((_, c) => {
      const { share, title } = cell(r, c);
      const fill = share === null || share === undefined ? `url(#${hatch})` : shade(share);
      root.append(svg("rect", { x: left + c * w + 1, y: top + r * h + 1, width: Math.max(1, w - 2), height: Math.max(1, h - 2), rx: 2, fill, class: "chart__cell" }, tip(title)));
    });
  });
  // Legend: the scale in five steps, and the hatch for "nothing open".
  const ly = top + gridHeight + 12;
  const steps = [0, 0.25, 0.5, 0.75, 1];
  const sw = 22;
  steps.forEach((s, i) => root.append(svg("rect", { x: left + i * sw, y: ly, width: sw, height: 12, fill: shade(s) })));
  root.append(svg("text", { x: left, y: ly + 26, class: "chart__tick" }, "0%"));
  root.append(svg("text", { x: left + steps.length * sw, y: ly + 26, class: "chart__tick", "text-anchor": "end" }, "100%"));
  const cx = left + steps.length * sw + 18;
  root.append(svg("rect", { x: cx, y: ly, width: 16, height: 12, fill: `url(#${hatch})`, stroke: "#c3c9d2" }));
  root.append(svg("text", { x: cx + 22, y: ly + 10, class: "chart__tick" }, "closed"));
  return root;
}
