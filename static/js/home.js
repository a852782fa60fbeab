// Station list: filters, live OPEN/CLOSED badges and free-charger counts.
import { get, messageOf } from "./api.js";
import { LiveChannel, bindIndicator } from "./live.js";
import { nextChangeText, pausedState } from "./status.js";
import { ServerClock, money, todayText, zoneName } from "./time.js";
import { $, announce, clearError, clone, setBadge, setState, showError } from "./ui.js";

const form = $("#filters");
const list = $("#station-list");
const stateBox = $("#stations-state");
const countLine = $("#result-count");
const nearNote = $("#near-note");
const nearButton = $("#near-me");
const clock = new ServerClock();
const stations = new Map(); // id -> station as last known
let near = null;
let loadToken = 0;

function query() {
  const params = new URLSearchParams();
  const data = new FormData(form);
  for (const key of ["q", "city", "charger_type"]) {
    const value = String(data.get(key) || "").trim();
    if (value) params.set(key, value);
  }
  if (data.get("open_now")) params.set("open_now", "true");
  if (near) params.set("near", `${near.lat.toFixed(5)},${near.lon.toFixed(5)}`);
  return params;
}

function nextText(s) {
  const paused = pausedState(s.status);
  if (paused) return paused.text;
  return nextChangeText(s.is_open, s.next_change_at, s.timezone, clock.now());
}

function freeText(s) {
  if (s.available_chargers === undefined || s.available_chargers === null || !bookable(s)) return "–";
  const total = s.total_chargers ?? "?";
  return `${s.available_chargers} of ${total}`;
}

function bookable(s) {
  return s.is_open && (!s.status || s.status === "ACTIVE");
}

function fill(card, s) {
  const open = bookable(s);
  const paused = pausedState(s.status);
  card.dataset.open = paused ? "paused" : open ? "true" : "false";
  setBadge(card.querySelector(".badge"), open, paused);
  card.querySelector(".js-hours").textContent = todayText(s.open_time, s.close_time, s.exceptions_today);
  card.querySelector(".js-free").textContent = freeText(s);
  card.querySelector(".js-next").textContent = nextText(s);
  const book = card.querySelector(".js-book");
  book.hidden = !open;
}

function render(items) {
  const cards = items.map((s) => {
    const card = clone("station-card");
    const url = `/stations/${s.id}`;
    card.dataset.stationId = s.id;
    const link = card.querySelector(".station-card__link");
    link.href = url;
    link.textContent = s.name;
    const distance = typeof s.distance_km === "number" ? ` · ${s.distance_km.toFixed(1)} km away` : "";
    card.querySelector(".station-card__where").textContent = `${s.location}, ${s.city}${distance}`;
    card.querySelector(".js-price").textContent = `${money(s.price_per_hour, s.currency, { compact: true })}/h`;
    card.querySelector(".js-zone").textContent = zoneName(s.timezone);
    card.querySelector(".js-zone").title = s.timezone;
    const book = card.querySelector(".js-book");
    book.href = `${url}#booking`;
    book.setAttribute("aria-label", `Book now at ${s.name}`);
    const details = card.querySelector(".js-details");
    details.href = url;
    details.setAttribute("aria-label", `Details of ${s.name}`);
    fill(card, s);
    return card;
  });
  list.replaceChildren(...cards);
}

/** The summary above the list, always counted from the cards on screen. */
function renderCount() {
  const shown = [...stations.values()];
  const open = shown.filter(bookable).length;
  countLine.textContent = shown.length ? `${shown.length} station${shown.length === 1 ? "" : "s"} · ${open} open now` : "";
}

async function load({ quiet = false } = {}) {
  const token = ++loadToken;
  const params = query();
  params.set("limit", "200");
  if (!quiet) setState(stateBox, "loading", "Loading stations…");
  try {
    const data = await get(`/api/stations?${params}`);
    if (token !== loadToken) return;
    const items = Array.isArray(data) ? data : data.items ?? data.stations ?? [];
    stations.clear();
    for (const s of items) stations.set(s.id, s);
    if (items.length && items[0].current_server_time) clock.sync(items[0].current_server_time);
    render(items);
    renderCount();
    if (!items.length) setState(stateBox, "empty", "No stations match these filters. Try clearing a filter.");
    else setState(stateBox, "ready");
  } catch (err) {
    if (token !== loadToken) return;
    // A background refresh that fails keeps the list it had; a load the person asked for says so.
    if (!quiet) {
      stations.clear();
      list.replaceChildren();
      renderCount();
      setState(stateBox, "error", `Couldn't load stations. ${messageOf(err)}`, { retry: load, loading: "Loading stations…" });
    }
  }
}

function apply(update) {
  const id = update.station_id;
  const s = stations.get(id);
  if (!s) return;
  const wasOpen = s.is_open;
  for (const key of ["is_open", "open_time", "close_time", "exceptions_today", "next_change_at", "available_chargers", "total_chargers"]) {
    if (key in update) s[key] = update[key];
  }
  if (update.station_status) s.status = update.station_status;
  // An availability message lists every charger: both counts follow from it (a new charger too).
  if (Array.isArray(update.chargers)) {
    if (!("available_chargers" in update)) s.available_chargers = update.chargers.filter((c) => c.available_now).length;
    if (!("total_chargers" in update)) s.total_chargers = update.chargers.length;
  }
  const card = list.querySelector(`[data-station-id="${id}"]`);
  if (card) fill(card, s);
  if ("is_open" in update && wasOpen !== s.is_open) announce(`${s.name} is now ${s.is_open ? "open" : "closed"}.`);
  renderCount();
}

function onMessage(msg) {
  if (msg.server_time) clock.sync(msg.server_time);
  if (Array.isArray(msg.stations)) {
    for (const s of msg.stations) apply({ ...s, station_id: s.station_id ?? s.id });
    return;
  }
  if (msg.type === "status" || msg.type === "availability" || msg.type === "snapshot") apply(msg);
}

let typing = null;
form.addEventListener("input", (event) => {
  clearTimeout(typing);
  typing = setTimeout(() => load(), event.target.type === "search" ? 250 : 0);
});
form.addEventListener("submit", (event) => {
  event.preventDefault();
  load();
});

nearButton.addEventListener("click", () => {
  if (near) {
    near = null;
    nearButton.setAttribute("aria-pressed", "false");
    load();
    return;
  }
  if (!("geolocation" in navigator)) {
    showError(nearNote, "This browser can't share its location, so stations are not sorted by distance.");
    return;
  }
  nearButton.disabled = true;
  navigator.geolocation.getCurrentPosition(
    (pos) => {
      nearButton.disabled = false;
      near = { lat: pos.coords.latitude, lon: pos.coords.longitude };
      clearError(nearNote);
      nearButton.setAttribute("aria-pressed", "true");
      announce("Showing the nearest stations first.");
      load();
    },
    () => {
      nearButton.disabled = false;
      showError(nearNote, "Your location isn't available, so stations are not sorted by distance.");
    },
    { timeout: 10_000, maximumAge: 300_000 },
  );
});

// Relative phrases ("closes today at 22:00 · in 5 min") drift as time passes: refresh them, and if a
// change came due without a live message (socket down, message lost), fetch the list again.
setInterval(() => {
  const now = clock.now().getTime();
  let overdue = false;
  for (const [id, s] of stations) {
    const card = list.querySelector(`[data-station-id="${id}"]`);
    if (card) card.querySelector(".js-next").textContent = nextText(s);
    if (s.next_change_at && Date.parse(s.next_change_at) < now - 3000) overdue = true;
  }
  if (overdue) load({ quiet: true });
}, 15_000);

const channel = new LiveChannel({
  path: "/ws/stations",
  onMessage,
  poll: () => load({ quiet: true }),
  onGap: () => load({ quiet: true }),
});
bindIndicator($("#conn"), channel);
load().then(() => channel.start());
