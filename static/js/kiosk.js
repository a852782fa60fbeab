// Kiosk board: a screen at the station, read from a few metres away, that nobody touches.
//
// The countdown runs on the server's clock (offset re-anchored by every message), so a kiosk whose
// own clock is wrong still flips at the right second; the socket reconnects by itself and the board
// falls back to polling while it cannot. A board that has heard nothing from the server for a
// few seconds says it is offline and greys what it shows, rather than a confident OPEN.
import { get } from "./api.js";
import { LiveChannel, POLL_MS, bindIndicator } from "./live.js";
import { chargerState, mergeChargers, pausedState, powerText, sessionText } from "./status.js";
import { ServerClock, countdownText, localTime, nameZones, todayExceptionsText, todayHoursText, whenText } from "./time.js";
import { $, announce, el } from "./ui.js";

const main = $("#main");
const stationId = Number(main.dataset.stationId);
const tz = main.dataset.timezone;
const clock = new ServerClock();
const view = {
  isOpen: null,
  nextChangeAt: null,
  openTime: null,
  closeTime: null,
  exceptionsToday: [],
  stationStatus: "ACTIVE",
  chargers: [],
};
const OFFLINE_AFTER_MS = 5000;
let channel = null;
let offlineTimer = null;

function hoursLine() {
  const text = todayHoursText(view.openTime, view.closeTime);
  const regular = text.startsWith("Open") || text.startsWith("Closed") ? `${text} today` : `Today ${text}`;
  return [regular, todayExceptionsText(view.exceptionsToday)].filter(Boolean).join(" · ");
}

function renderState() {
  const open = Boolean(view.isOpen) && view.stationStatus === "ACTIVE";
  const paused = pausedState(view.stationStatus);
  const shown = paused ? "paused" : open ? "true" : "false";
  main.dataset.open = shown;
  const state = $("#kiosk-state");
  state.dataset.open = shown;
  state.textContent = paused ? paused.badge.toUpperCase() : open ? "OPEN" : "CLOSED";
  const hours = $("#kiosk-hours");
  hours.textContent = paused ? "Not taking bookings" : hoursLine();
  $("#kiosk-qr-title").textContent = paused ? "Station details" : "Book a slot"; // no booking to invite to
  hours.hidden = !paused && view.isOpen && !view.nextChangeAt && !view.exceptionsToday.length; // 24/7 says it already
  tick();
}

function tick() {
  const now = clock.now();
  $("#kiosk-clock").textContent = localTime(now, tz);
  const countdown = $("#kiosk-countdown");
  if (view.isOpen === null) return;
  if (pausedState(view.stationStatus)) {
    countdown.textContent = ""; // no opening or closing is coming while it is out of service
    return;
  }
  if (!view.nextChangeAt) {
    countdown.textContent = view.isOpen ? "Open around the clock" : "";
    return;
  }
  const left = Date.parse(view.nextChangeAt) - now.getTime();
  const verb = view.isOpen ? "Closes" : "Opens";
  if (left <= 0) {
    countdown.textContent = view.isOpen ? "Closing now…" : "Opening now…";
    return;
  }
  countdown.replaceChildren(
    el("span", { class: "kiosk__countdown-label", text: `${verb} ${whenText(view.nextChangeAt, tz, now)} · in ` }),
    el("span", { class: "kiosk__countdown-time", text: countdownText(left) }),
  );
}

function renderChargers() {
  const open = Boolean(view.isOpen) && view.stationStatus === "ACTIVE";
  const paused = pausedState(view.stationStatus);
  const free = view.chargers.filter((c) => chargerState(c).key === "free").length;
  $("#kiosk-free-count").parentElement.hidden = !open;
  $("#kiosk-free-count").textContent = free;
  $("#kiosk-free-label").textContent = `of ${view.chargers.length} charger${view.chargers.length === 1 ? "" : "s"} free`;
  $("#kiosk-grid").replaceChildren(
    ...view.chargers.map((c) => {
      const state = chargerState(c, open, paused);
      return el(
        "li",
        { class: "kiosk-charger", "data-state": state.key },
        el("span", { class: "kiosk-charger__number", text: c.charger_number }),
        el("span", { class: "kiosk-charger__type", text: [c.charger_type, powerText(c.power_kw)].filter(Boolean).join(" · ") }),
        el("span", { class: "kiosk-charger__state", text: state.label }),
        ...(c.session ? [el("span", { class: "kiosk-charger__session", text: sessionText(c.session) })] : []),
      );
    }),
  );
}

function apply(msg) {
  if (msg.server_time || msg.current_server_time) clock.sync(msg.server_time || msg.current_server_time);
  const was = view.isOpen;
  if ("is_open" in msg) view.isOpen = Boolean(msg.is_open);
  if ("next_change_at" in msg) view.nextChangeAt = msg.next_change_at;
  if ("open_time" in msg) view.openTime = msg.open_time;
  if ("close_time" in msg) view.closeTime = msg.close_time;
  if (Array.isArray(msg.exceptions_today)) view.exceptionsToday = msg.exceptions_today;
  if (msg.station_status) view.stationStatus = msg.station_status;
  if (Array.isArray(msg.chargers)) {
    view.chargers = mergeChargers(view.chargers, msg.chargers);
    renderChargers();
  }
  const statusWas = view.renderedStatus;
  view.renderedStatus = view.stationStatus;
  renderState();
  if (was !== view.isOpen || statusWas !== view.stationStatus) renderChargers();
  if (was !== null && was !== view.isOpen) announce(view.isOpen ? "The station is now open." : "The station is now closed.");
  scheduleCheck();
  heardFromServer();
}

// -- offline ------------------------------------------------------------------------------------

function setOffline(offline) {
  if ((main.dataset.stale === "true") === offline) return;
  main.dataset.stale = offline ? "true" : "false";
  $("#kiosk-offline").hidden = !offline;
  announce(offline ? "Offline. The status shown may be out of date." : "Back online.");
}

/** Say "offline" unless the server is heard from within `ms`. */
function expectServerWithin(ms) {
  clearTimeout(offlineTimer);
  offlineTimer = setTimeout(() => setOffline(true), ms);
}

/** Fresh data arrived: over the socket it keeps coming; by a poll, the next one is due in 30 s. */
function heardFromServer() {
  setOffline(false);
  if (channel?.state === "connected") clearTimeout(offlineTimer);
  else expectServerWithin(POLL_MS + OFFLINE_AFTER_MS);
}

function watchConnection(state) {
  if (state === "connected") heardFromServer();
  else expectServerWithin(OFFLINE_AFTER_MS);
}

async function refreshStatus() {
  apply(await get(`/api/stations/${stationId}/status`));
}

// If the change is due and no message came (a lost event), ask the server a moment later.
let checkTimer = null;
function scheduleCheck() {
  clearTimeout(checkTimer);
  if (!view.nextChangeAt) return;
  const wait = Date.parse(view.nextChangeAt) - clock.now().getTime() + 2000;
  if (wait > 0 && wait < 2 ** 31 - 1) checkTimer = setTimeout(() => refreshStatus().catch(() => {}), wait);
}

async function loadStation() {
  const s = await get(`/api/stations/${stationId}`);
  view.chargers = [];
  apply({ ...s, chargers: s.chargers ?? [], station_status: s.status });
}

async function loadUntilReady(delay = 2000) {
  try {
    await loadStation();
  } catch {
    setTimeout(() => loadUntilReady(Math.min(delay * 2, 60_000)), delay);
  }
}

function onMessage(msg) {
  if (msg.type === "snapshot" || msg.type === "status" || msg.type === "availability") apply(msg);
  else if (msg.type === "changed") loadStation().catch(() => {});
}

nameZones();
setInterval(tick, 1000);
tick();
expectServerWithin(OFFLINE_AFTER_MS);
channel = new LiveChannel({
  path: `/ws/stations/${stationId}`,
  onMessage,
  poll: refreshStatus,
  onGap: () => loadStation().catch(() => {}),
  onState: watchConnection,
});
bindIndicator($("#conn"), channel, { connecting: "Connecting…", connected: "Live", reconnecting: "Reconnecting…" });
loadUntilReady().then(() => channel.start());
