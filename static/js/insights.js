// Operator insights: totals for a station (or all) over a date range, a per-day chart of
// utilization and bookings, and an hour-of-week utilization heatmap. Both charts are inline SVG
// drawn here from the JSON, each with a table of the same numbers for screen readers.
import { get, messageOf } from "./api.js";
import { fillStations, writeFilters } from "./console.js";
import { barPanels, heatGrid } from "./svg-chart.js";
import { money } from "./time.js";
import { $, el, setState } from "./ui.js";

const DEFAULT_DAYS = 14;
const WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const PHONE = 600; // below this width the heatmap turns: hours down, weekdays across

const form = $("#in-filters");
const stateBox = $("#in-state");
const report = $("#in-report");
const range = $("#in-range");
const daysChart = $("#in-days-chart");
const heatChart = $("#in-heat-chart");
let data = null;
let request = null;

const number = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 });
const percent = (share) => (share === null || share === undefined ? "–" : `${whole.format(share * 100)}%`);
const hours = (h) => `${number.format(h)} h`;
const hourLabel = (h) => `${String(h).padStart(2, "0")}:00`;
const revenueText = (list) => (list?.length ? list.map((r) => money(r.amount, r.currency)).join(" + ") : "–");

/** A calendar date (YYYY-MM-DD) as words, without any time zone moving it. */
function dayText(iso, options = { weekday: "short", day: "numeric", month: "short" }) {
  return new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" }).format(new Date(`${iso}T00:00:00Z`));
}

/** The browser's own calendar date, as the date inputs take it. */
function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function figure(name, value, note = "") {
  return el("div", { class: "figure" }, el("dt", { text: name }), el("dd", { text: value }, note ? el("span", { class: "figure__note", text: note }) : null));
}

function renderTotals(t) {
  $("#in-totals").replaceChildren(
    figure("Bookings", whole.format(t.bookings)),
    figure("Utilization", percent(t.utilization), t.utilization === null ? "no charger was open" : "of open charger-hours"),
    figure("Booked charger-hours", number.format(t.booked_charger_hours), `of ${number.format(t.open_charger_hours)} open`),
    figure("Revenue", revenueText(t.revenue)),
    figure("Cancelled", whole.format(t.cancelled)),
    figure("Expired holds", whole.format(t.expired)),
    figure("No-shows", t.no_shows === null ? "–" : whole.format(t.no_shows), t.no_shows === null ? "not recorded" : ""),
    figure("Energy delivered", t.energy_kwh === null ? "–" : `${number.format(t.energy_kwh)} kWh`, t.energy_kwh === null ? "not measured" : ""),
  );
}

function niceMax(value) {
  if (value <= 4) return 4;
  const step = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * step >= value) return m * step;
  return 10 * step;
}

function drawDays() {
  const days = data.days;
  const width = daysChart.clientWidth;
  if (!days.length || !width) {
    daysChart.replaceChildren(el("p", { class: "hint", text: "No days in this range." }));
    return;
  }
  const maxBookings = niceMax(Math.max(...days.map((d) => d.bookings)));
  const compact = width < PHONE;
  daysChart.replaceChildren(
    barPanels({
      width,
      label: `Utilization and bookings per day, ${dayText(data.from)} to ${dayText(data.to)}. The table below has the numbers.`,
      labels: days.map((d) => dayText(d.date, { day: "numeric", month: "short" })),
      panels: [
        {
          name: "Utilization",
          className: "chart__panel--util",
          values: days.map((d) => d.utilization),
          max: 1,
          ticks: [0, 0.5, 1],
          format: percent,
          titles: days.map((d) => `${dayText(d.date)}: ${percent(d.utilization)} (${hours(d.booked_charger_hours)} of ${hours(d.open_charger_hours)})`),
          height: compact ? 120 : 160,
        },
        {
          name: "Bookings",
          className: "chart__panel--bookings",
          values: days.map((d) => d.bookings),
          max: maxBookings,
          ticks: [0, maxBookings / 2, maxBookings],
          format: (v) => whole.format(v),
          titles: days.map((d) => `${dayText(d.date)}: ${d.bookings} bookings`),
          height: compact ? 80 : 110,
        },
      ],
    }),
  );
}

function heatCell(weekday, hour) {
  return data.heatmap.find((c) => c.weekday === weekday && c.hour === hour) ?? { utilization: null, booked_charger_hours: 0, open_charger_hours: 0 };
}

function cellTitle(weekday, hour) {
  const c = heatCell(weekday, hour);
  const when = `${WEEKDAY_NAMES[weekday - 1]} ${hourLabel(hour)}–${hourLabel((hour + 1) % 24)}`;
  if (c.utilization === null) return `${when}: closed`;
  return `${when}: ${percent(c.utilization)} (${hours(c.booked_charger_hours)} of ${hours(c.open_charger_hours)})`;
}

function drawHeat() {
  const width = heatChart.clientWidth;
  if (!width) return;
  const label = "Utilization by weekday and hour of day. The table below has the numbers.";
  const hoursList = Array.from({ length: 24 }, (_, h) => h);
  const turned = width < PHONE;
  heatChart.replaceChildren(
    turned
      ? heatGrid({
          width,
          label,
          rows: hoursList.map((h) => hourLabel(h)),
          cols: WEEKDAYS,
          cellHeight: 18,
          cell: (r, c) => ({ share: heatCell(c + 1, r).utilization, title: cellTitle(c + 1, r) }),
        })
      : heatGrid({
          width,
          label,
          rows: WEEKDAYS,
          cols: hoursList.map((h) => String(h).padStart(2, "0")),
          cellHeight: Math.round(Math.min(34, Math.max(20, (width - 48) / 24 * 0.75))),
          cell: (r, c) => ({ share: heatCell(r + 1, c).utilization, title: cellTitle(r + 1, c) }),
        }),
  );
}

function renderTables() {
  $("#in-days-table tbody").replaceChildren(
    ...data.days.map((d) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: dayText(d.date) }),
        el("td", { class: "cell-number", text: whole.format(d.bookings) }),
        el("td", { class: "cell-number", text: number.format(d.booked_charger_hours) }),
        el("td", { class: "cell-number", text: number.format(d.open_charger_hours) }),
        el("td", { class: "cell-number", text: percent(d.utilization) }),
        el("td", { class: "cell-number", text: revenueText(d.revenue) }),
      ),
    ),
  );
  const hoursList = Array.from({ length: 24 }, (_, h) => h);
  $("#in-heat-table thead").replaceChildren(
    el("tr", {}, el("th", { scope: "col", text: "Weekday" }), ...hoursList.map((h) => el("th", { scope: "col", text: hourLabel(h) }))),
  );
  $("#in-heat-table tbody").replaceChildren(
    ...WEEKDAY_NAMES.map((name, i) =>
      el("tr", {}, el("th", { scope: "row", text: name }), ...hoursList.map((h) => el("td", { class: "cell-number", text: percent(heatCell(i + 1, h).utilization) }))),
    ),
  );
}

function draw() {
  if (!data || report.hidden) return;
  drawDays();
  drawHeat();
}

function filters() {
  const values = {};
  const station = $("#in-station").value;
  if (station) values.station_id = station;
  values.from = $("#in-from").value;
  values.to = $("#in-to").value;
  return values;
}

async function load() {
  const values = filters();
  if (!values.from || !values.to || values.to < values.from) {
    report.hidden = true;
    range.textContent = "";
    setState(stateBox, "error", "Choose a “From” date on or before the “To” date.");
    return;
  }
  request?.abort();
  const mine = new AbortController();
  request = mine;
  writeFilters(values);
  setState(stateBox, "loading", "Loading insights…");
  try {
    data = await get(`/api/operator/insights?${new URLSearchParams(values)}`, { signal: mine.signal });
    const station = $("#in-station").selectedOptions[0]?.textContent ?? "All stations";
    range.textContent = `${station} · ${dayText(data.from, { day: "numeric", month: "short", year: "numeric" })} – ${dayText(data.to, { day: "numeric", month: "short", year: "numeric" })}`;
    renderTotals(data.totals);
    renderTables();
    report.hidden = false;
    draw();
    setState(stateBox, "ready");
  } catch (err) {
    if (err?.name === "AbortError") return;
    report.hidden = true;
    range.textContent = "";
    setState(stateBox, "error", `Couldn't load insights. ${messageOf(err)}`, { retry: load, loading: "Loading insights…" });
  }
}

let lastWidth = 0;
new ResizeObserver(() => {
  const width = report.clientWidth;
  if (width === lastWidth) return;
  lastWidth = width;
  draw();
}).observe(report);

form.addEventListener("change", load);
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});

const initial = new URLSearchParams(window.location.search);
const today = new Date();
$("#in-to").value = initial.get("to") ?? isoDay(today);
$("#in-from").value = initial.get("from") ?? isoDay(new Date(today.getFullYear(), today.getMonth(), today.getDate() - (DEFAULT_DAYS - 1)));
fillStations($("#in-station"), initial.get("station_id")).then(load);
