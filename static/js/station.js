// Station page: details, live charger grid, slot picker, booking and payment.
import { get, messageOf } from "./api.js";
import { LiveChannel, bindIndicator } from "./live.js";
import { BookingFlow } from "./booking.js";
import { boundaryReloader, chargingControls, followSessions, inSlot } from "./charging.js";
import { chargerState, mergeChargers, nextChangeText, pausedState, powerText } from "./status.js";
import { ServerClock, clockText, money, nameZones, slotText, todayText, zoneParts } from "./time.js";
import { $, announce, el, setBadge, setState } from "./ui.js";

const main = $("#main");
const pageState = $("#page-state");
const stationId = Number(main.dataset.stationId);
const tz = main.dataset.timezone;
const clock = new ServerClock();
const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

const view = {
  station: null,
  isOpen: null,
  stationStatus: "ACTIVE",
  nextChangeAt: null,
  chargers: [],
};

const flow = main.dataset.signedIn === "true" ? new BookingFlow({ stationId, tz, clock, onClosed: refreshStatus }) : null;

// "Your booking": the signed-in driver's paid booking here whose slot is running, with the
// charging controls My bookings has.
const panel = $("#my-booking");
const me = Number(main.dataset.userId || 0);
const panelAtBoundary = boundaryReloader(() => loadMyBooking());

async function loadMyBooking() {
  let items;
  try {
    const data = await get(`/api/bookings?station_id=${stationId}&status=PAID&limit=200`);
    // Operators are shown everyone's bookings: the panel is the signed-in person's own.
    items = (Array.isArray(data) ? data : data.items ?? []).filter((b) => b.user_id === undefined || b.user_id === me);
  } catch {
    return;
  }
  panelAtBoundary(items);
  const b = items.find((x) => inSlot(x));
  panel.hidden = !b;
  panel.dataset.bookingId = b ? String(b.booking_id ?? b.id) : "";
  if (!b) return;
  const where = [b.charger_number ? `Charger #${b.charger_number}` : "", b.charger_type].filter(Boolean).join(" ");
  panel.querySelector(".js-slot").textContent = [slotText(b.slot_time ?? b.slot_start, b.slot_end, tz), where].filter(Boolean).join(" · ");
  panel.querySelector(".js-charging").hidden = true;
  panel.querySelector(".js-charge").hidden = true;
  await chargingControls(panel, b, panel.dataset.bookingId, loadMyBooking);
}

function renderHead() {
  const s = view.station;
  const open = Boolean(view.isOpen) && view.stationStatus === "ACTIVE";
  const paused = pausedState(view.stationStatus);
  setBadge($("#station-badge"), open, paused);
  $("#station-next").textContent = paused ? paused.text : nextChangeText(open, view.nextChangeAt, tz, clock.now());
  $("#station-hours").textContent = todayText(s.open_time, s.close_time, s.exceptions_today);
  $("#station-price").textContent = `${money(s.price_per_hour, s.currency, { compact: true })} per hour`;
  const free = view.chargers.filter((c) => chargerState(c, open).key === "free").length;
  const total = view.chargers.length;
  const chargers = `${total} charger${total === 1 ? "" : "s"}`;
  $("#station-free").textContent = paused ? `${chargers} · not in use` : open ? `${free} of ${total} free now` : `${chargers} · closed now`;
}

function renderChargers() {
  const open = Boolean(view.isOpen) && view.stationStatus === "ACTIVE";
  const paused = pausedState(view.stationStatus);
  const grid = $("#charger-grid");
  if (!view.chargers.length) {
    grid.replaceChildren(el("li", { class: "state__empty", text: "This station has no chargers yet." }));
    return;
  }
  grid.replaceChildren(
    ...view.chargers.map((c) => {
      const state = chargerState(c, open, paused);
      return el(
        "li",
        { class: "charger", "data-state": state.key, "data-charger-id": c.id },
        el("span", { class: "charger__number", text: `#${c.charger_number}` }),
        el("span", { class: "charger__type", text: [c.charger_type, powerText(c.power_kw)].filter(Boolean).join(" · ") }),
        el("span", { class: "charger__state", text: state.label }),
      );
    }),
  );
}

function renderWeek(hours) {
  const body = $("#hours-table tbody");
  const today = zoneParts(clock.now(), tz).weekday; // "Mon"…
  const rows = WEEKDAYS.map((name, i) => {
    let text;
    if (hours?.twentyfourseven) text = "Open 24 hours";
    else {
      const periods = (hours?.regular_hours ?? []).filter((p) => p.weekday === i + 1);
      text = periods.length
        ? periods
            .map((p) => {
              const overnight = p.period_end <= p.period_begin && p.period_end !== "24:00";
              if (p.period_begin === "00:00" && (p.period_end === "00:00" || p.period_end === "24:00")) return "Open 24 hours";
              return `${p.period_begin} – ${clockText(p.period_end)}${overnight ? " (next day)" : ""}`;
            })
            .join(", ")
        : "Closed";
    }
    const row = el("tr", { "aria-current": name.startsWith(today) ? "date" : null }, el("th", { scope: "row", text: name }), el("td", { text }));
    return row;
  });
  body.replaceChildren(...rows);
}

/** Show or hide everything that only makes sense while the station takes bookings. */
function applyOpen(isOpen, { announceChange = true } = {}) {
  const bookable = Boolean(isOpen) && view.stationStatus === "ACTIVE";
  const changed = view.isOpen !== null && view.isOpen !== isOpen;
  view.isOpen = Boolean(isOpen);
  renderHead();
  renderChargers();
  const note = $("#closed-note");
  note.hidden = bookable;
  const paused = pausedState(view.stationStatus);
  if (!bookable) {
    $("#closed-note-title").textContent = paused ? `${paused.text}.` : "This station is closed right now.";
    $("#closed-note-text").textContent = paused
      ? "Booking and payment resume when it is back in service."
      : view.nextChangeAt
          ? `${nextChangeText(false, view.nextChangeAt, tz, clock.now())}. Booking and payment resume then.`
          : "Booking and payment resume when it opens.";
  }
  const signin = $("#signin-note");
  if (signin) signin.hidden = !bookable;
  flow?.setBookable(bookable);
  if (changed && announceChange) announce(isOpen ? `${view.station.name} is now open. Booking is available.` : `${view.station.name} has closed. Booking and payment are paused.`);
}

function applyStatus(msg) {
  if (msg.server_time || msg.current_server_time) clock.sync(msg.server_time || msg.current_server_time);
  if ("next_change_at" in msg) view.nextChangeAt = msg.next_change_at;
  if ("open_time" in msg) view.station.open_time = msg.open_time;
  if ("close_time" in msg) view.station.close_time = msg.close_time;
  if ("exceptions_today" in msg) view.station.exceptions_today = msg.exceptions_today;
  if (msg.station_status) view.stationStatus = msg.station_status;
  if (Array.isArray(msg.chargers)) {
    view.chargers = mergeChargers(view.chargers, msg.chargers);
    renderChargers();
  }
  if ("is_open" in msg) applyOpen(msg.is_open);
  else renderHead();
  scheduleTransitionCheck();
}

async function refreshStatus() {
  const status = await get(`/api/stations/${stationId}/status`);
  applyStatus(status);
}

async function loadStation() {
  const s = await get(`/api/stations/${stationId}`);
  view.station = s;
  view.stationStatus = s.status || "ACTIVE";
  view.nextChangeAt = s.next_change_at;
  view.chargers = [...(s.chargers ?? [])].sort((a, b) => a.charger_number - b.charger_number);
  clock.sync(s.current_server_time);
  renderChargers();
  renderWeek(s.hours);
  applyOpen(s.is_open, { announceChange: false });
  flow?.setChargers(view.chargers);
}

// Backstop for a lost message: shortly after the next change is due, ask the server.
let transitionTimer = null;
function scheduleTransitionCheck() {
  clearTimeout(transitionTimer);
  if (!view.nextChangeAt) return;
  const wait = Date.parse(view.nextChangeAt) - clock.now().getTime() + 2000;
  if (wait > 0 && wait < 2 ** 31 - 1) transitionTimer = setTimeout(() => refreshStatus().catch(() => {}), wait);
}

// A status event may come from an hours change: refresh the weekly table too, each page at a
// slightly different moment so a transition seen by many pages is not one burst of requests.
let detailsTimer = null;
function refreshDetailsSoon() {
  clearTimeout(detailsTimer);
  detailsTimer = setTimeout(() => loadStation().catch(() => {}), 500 + Math.random() * 2500);
}

function onMessage(msg) {
  if (msg.type === "status") refreshDetailsSoon();
  if (msg.type === "snapshot" || msg.type === "status") applyStatus(msg);
  else if (msg.type === "availability") {
    view.chargers = mergeChargers(view.chargers, msg.chargers ?? []);
    renderChargers();
    renderHead();
    flow?.setChargers(view.chargers);
  } else if (msg.type === "changed") {
    loadStation().catch(() => {});
  }
}

/** The station could not be loaded: nothing may look as if it were still loading or known. */
function showLoadFailure(err) {
  const badge = $("#station-badge");
  badge.dataset.open = "";
  badge.textContent = "Unknown";
  $("#station-next").textContent = "";
  for (const id of ["#station-hours", "#station-price", "#station-free"]) $(id).textContent = "–";
  $("#conn").hidden = true; // no live link is tried until the station has loaded
  $("#charger-grid").replaceChildren(el("li", { class: "state__empty", text: "Chargers are shown once the station has loaded." }));
  setState(pageState, "error", `Couldn't load this station. ${messageOf(err)}`, { retry: start, loading: "Loading the station…" });
}

/** "Book now" on the home page links to `#booking`: once the section has its final content (the
 * form appears only after the station has loaded), bring it into view, as the browser could not. */
function revealBookingIfAsked() {
  if (window.location.hash !== "#booking") return;
  $("#booking").scrollIntoView({ block: "start" });
}

async function start() {
  nameZones();
  try {
    await loadStation();
  } catch (err) {
    showLoadFailure(err);
    return;
  }
  setState(pageState, "ready");
  $("#conn").hidden = false;
  scheduleTransitionCheck();
  setInterval(renderHead, 30_000);
  const channel = new LiveChannel({
    path: `/ws/stations/${stationId}`,
    onMessage,
    poll: refreshStatus,
    onGap: () => loadStation().catch(() => {}),
  });
  bindIndicator($("#conn"), channel);
  channel.start();
  if (panel) {
    followSessions((bookingId) => (panel.dataset.bookingId === String(bookingId) ? panel : null), loadMyBooking);
    document.addEventListener("chargeslot:notification", (event) => event.detail?.booking_id && loadMyBooking());
    loadMyBooking();
  }
  await flow?.start();
  revealBookingIfAsked();
}

start();
