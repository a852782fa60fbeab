// Operator bookings: every booking, filtered and paged; each row opens its details, where an
// operator may cancel it (a paid booking is refunded). The filters live in the address bar, so a
// reload or a shared link shows the same list, and the CSV link always carries them too.
import { get, messageOf, post } from "./api.js";
import { fillStations, onFilterChange, onPage, pageText, readFilters, writeFilters } from "./console.js";
import { LiveChannel } from "./live.js";
import { dateTimeText, money, slotText } from "./time.js";
import { $, announce, busy, el, setState, showError } from "./ui.js";

const PAGE = 20;
const STATUS_LABEL = {
  CONFIRMED: "Awaiting payment",
  PAID: "Paid",
  COMPLETED: "Completed",
  CANCELLED: "Cancelled",
  EXPIRED: "Expired",
};
const FILTERS = ["station_id", "status", "from", "to", "email"];

const form = $("#bk-filters");
const table = $("#bk-table");
const body = table.querySelector("tbody");
const stateBox = $("#bk-state");
const count = $("#bk-count");
const pager = $("#bk-pager");
const csv = $("#bk-csv");
let zones = new Map();
let sort = "-slot";
let offset = 0;
let request = null;
let applied = null; // the filters of the list on screen (or loading)

function filters() {
  const values = readFilters(form, FILTERS);
  if (sort !== "-slot") values.sort = sort;
  return values;
}

function query(extra = {}) {
  const params = new URLSearchParams({ ...filters(), ...extra });
  return params.toString();
}

function zoneOf(b) {
  return zones.get(b.station_id) ?? "UTC";
}

function detailList(b) {
  const tz = zoneOf(b);
  const rows = [
    ["Driver", b.driver_email],
    ["Slot", `${slotText(b.slot_time, b.slot_end, tz)} (${tz})`],
    ["Charger", `#${b.charger_number} · ${b.charger_type}`],
    ["Duration", `${b.duration_minutes} min`],
    ["Amount", money(b.amount_due, b.currency)],
    ["Vehicle", b.vehicle_number || "–"],
    ["Booked", dateTimeText(b.created_at, tz)],
    ["Hold until", b.status === "CONFIRMED" && b.hold_expires_at ? dateTimeText(b.hold_expires_at, tz) : ""],
  ].filter(([, v]) => v);
  return el("dl", { class: "summary" }, ...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))));
}

/** What cancelling does to this booking, in the words the confirmation uses. */
function cancelOffer(b) {
  const started = Date.parse(b.slot_time) <= Date.now();
  if (b.status === "PAID" && !started) {
    return {
      label: "Cancel with refund",
      question: `Cancel booking ${b.booking_id} for ${b.driver_email} and refund ${money(b.amount_due, b.currency)} to the payment method they used? The charger is released at once.`,
      yes: `Cancel and refund ${money(b.amount_due, b.currency)}`,
    };
  }
  if (b.status === "CONFIRMED") {
    return {
      label: "Cancel booking",
      question: `Cancel booking ${b.booking_id} for ${b.driver_email}? It is not paid yet, so there is nothing to refund. The charger is released at once.`,
      yes: "Cancel booking",
    };
  }
  return null;
}

function detailPanel(b) {
  const id = `bk-detail-${b.booking_id}`;
  const error = el("p", { class: "alert alert--error", role: "alert", tabIndex: -1, hidden: true });
  const panel = el("div", { class: "bk-detail", id }, detailList(b), error);
  const offer = cancelOffer(b);
  if (!offer) {
    const why = b.status === "PAID" ? "The slot has started, so it can no longer be cancelled or refunded." : "Nothing to do: this booking is finished.";
    panel.append(el("p", { class: "hint", text: why }));
    return panel;
  }
  const start = el("button", { type: "button", class: "button button--danger-ghost button--small", text: offer.label, "aria-label": `${offer.label}: booking ${b.booking_id}` });
  const question = el("p", { class: "confirm__question", id: `${id}-q`, tabIndex: -1, text: offer.question });
  const yes = el("button", { type: "button", class: "button button--danger button--small", text: offer.yes });
  const no = el("button", { type: "button", class: "button button--ghost button--small", text: "Keep booking" });
  const confirm = el("div", { class: "confirm", role: "group", "aria-labelledby": `${id}-q`, hidden: true }, question, el("div", { class: "actions" }, yes, no));
  start.addEventListener("click", () => {
    confirm.hidden = false;
    start.hidden = true;
    question.focus();
  });
  no.addEventListener("click", () => {
    confirm.hidden = true;
    start.hidden = false;
    start.focus();
  });
  yes.addEventListener("click", async () => {
    showError(error, "");
    try {
      const done = await busy(yes, () => post(`/api/bookings/${b.booking_id}/cancel`), "Cancelling…");
      announce(b.status === "PAID" ? `Booking ${b.booking_id} cancelled and refunded.` : `Booking ${b.booking_id} cancelled.`);
      await load({ keepOpen: done.booking_id });
    } catch (err) {
      showError(error, messageOf(err));
      error.focus();
    }
  });
  panel.append(el("div", { class: "actions" }, start), confirm);
  return panel;
}

function row(b, open) {
  const tz = zoneOf(b);
  const toggle = el("button", {
    type: "button",
    class: "button button--ghost button--small",
    text: "Details",
    "aria-expanded": open ? "true" : "false",
    "aria-controls": `bk-detail-${b.booking_id}`,
    "aria-label": `Details of booking ${b.booking_id}`,
  });
  const main = el(
    "tr",
    { "data-booking-id": b.booking_id, class: "bk-row" },
    el("th", { scope: "row", "data-label": "Booking", text: `#${b.booking_id}` }),
    el("td", { "data-label": "Slot", text: slotText(b.slot_time, b.slot_end, tz) }),
    el("td", { "data-label": "Station", text: b.station_name }),
    el("td", { "data-label": "Driver", class: "cell-email", text: b.driver_email }),
    el("td", { "data-label": "Status" }, el("span", { class: "status-pill", "data-status": b.status, text: STATUS_LABEL[b.status] ?? b.status })),
    el("td", { "data-label": "Amount", class: "cell-number", text: money(b.amount_due, b.currency) }),
    el("td", { class: "row-actions" }, toggle),
  );
  const detail = el("tr", { class: "bk-detail-row", hidden: !open }, el("td", { colSpan: 7 }, detailPanel(b)));
  toggle.addEventListener("click", () => {
    const opening = detail.hidden;
    detail.hidden = !opening;
    toggle.setAttribute("aria-expanded", String(opening));
    main.classList.toggle("is-open", opening);
  });
  main.classList.toggle("is-open", open);
  return [main, detail];
}

function showSort() {
  const newest = sort === "-slot";
  $("#bk-slot-head").setAttribute("aria-sort", newest ? "descending" : "ascending");
  $("#bk-sort .sort-button__dir").textContent = newest ? "↓" : "↑";
  $("#bk-sort-text").textContent = newest ? ", newest first. Sort oldest first" : ", oldest first. Sort newest first";
}

async function load({ keepOpen = null, quiet = false } = {}) {
  request?.abort();
  const mine = new AbortController();
  request = mine;
  applied = query();
  writeFilters(filters());
  csv.href = `/api/operator/bookings.csv${query() ? `?${query()}` : ""}`;
  if (!quiet && (stateBox.hidden || stateBox.dataset.state !== "loading")) setState(stateBox, "loading", "Loading bookings…");
  table.setAttribute("aria-busy", "true");
  try {
    const page = await get(`/api/operator/bookings?${query({ limit: PAGE, offset })}`, { signal: mine.signal });
    if (page.total > 0 && offset >= page.total) {
      offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      return load({ keepOpen, quiet });
    }
    body.replaceChildren(...page.items.flatMap((b) => row(b, b.booking_id === keepOpen)));
    count.textContent = page.total ? pageText(offset, page.items.length, page.total, "booking") : "";
    pager.hidden = page.total <= PAGE;
    $("#bk-prev").disabled = offset === 0;
    $("#bk-next").disabled = offset + page.items.length >= page.total;
    table.hidden = !page.items.length;
    if (page.items.length) setState(stateBox, "ready");
    else setState(stateBox, "empty", "No bookings match these filters.");
    if (keepOpen && !quiet) {
      // The Cancel button is gone: keep keyboard focus with the same booking, or with the list.
      const toggle = body.querySelector(`[aria-controls="bk-detail-${keepOpen}"]`);
      (toggle ?? (table.hidden ? stateBox : table)).focus();
    }
  } catch (err) {
    if (err?.name === "AbortError") return;
    table.hidden = true;
    pager.hidden = true;
    count.textContent = "";
    setState(stateBox, "error", `Couldn't load bookings. ${messageOf(err)}`, { retry: () => load(), loading: "Loading bookings…" });
  } finally {
    if (request === mine) table.removeAttribute("aria-busy");
  }
}

/** The booking whose details are open, so a refresh keeps them open. */
function openBooking() {
  const toggle = body.querySelector('[aria-expanded="true"][aria-controls^="bk-detail-"]');
  return toggle ? Number(toggle.getAttribute("aria-controls").slice("bk-detail-".length)) : null;
}

// Bookings made, paid or cancelled anywhere appear without a reload: each such change publishes
// its station's availability, and a (re)connected channel's snapshot means changes may have been
// missed meanwhile. The list refreshes quietly (no spinner, focus left where it is).
let refresh = null;
function followChanges() {
  new LiveChannel({
    path: "/ws/stations",
    onMessage: (msg) => {
      if (msg.type !== "availability" && msg.type !== "snapshot") return;
      const station = filters().station_id;
      if (msg.type === "availability" && station && String(msg.station_id) !== String(station)) return;
      clearTimeout(refresh);
      refresh = setTimeout(() => load({ keepOpen: openBooking(), quiet: true }), 300);
    },
  }).start();
}

/** Back to the first page when the filters changed (a search box also fires "change" on blur). */
function refilter() {
  if (query() === applied) return;
  offset = 0;
  load();
}

const refilterNow = onFilterChange(form, refilter);
form.addEventListener("reset", () => setTimeout(refilterNow));
$("#bk-sort").addEventListener("click", () => {
  sort = sort === "-slot" ? "slot" : "-slot";
  showSort();
  refilterNow();
});
onPage($("#bk-prev"), $("#bk-next"), (step) => {
  offset = Math.max(0, offset + step * PAGE);
  load();
});

const initial = new URLSearchParams(window.location.search);
sort = initial.get("sort") === "slot" ? "slot" : "-slot";
showSort();
fillStations($("#bk-station"), initial.get("station_id")).then((map) => {
  zones = map;
  for (const name of FILTERS) {
    const input = form.elements.namedItem(name);
    if (input && name !== "station_id" && initial.has(name)) input.value = initial.get(name);
  }
  load();
  followChanges(); // only now: the filters it reads are in place
});
