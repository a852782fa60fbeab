// My bookings: status, slot in station time, amount, cancel, receipt.
import { get, messageOf, post } from "./api.js";
import { METHOD_LABEL } from "./status.js";
import { dateTimeText, money, slotText } from "./time.js";
import { $, announce, busy, clone, el, setState, showError, showErrorAndFocus } from "./ui.js";

const list = $("#booking-list");
const stateBox = $("#bookings-state");
const STATUS_LABEL = {
  CONFIRMED: "Awaiting payment",
  PAID: "Paid",
  COMPLETED: "Completed",
  CANCELLED: "Cancelled",
  EXPIRED: "Expired",
};
const CANCELLABLE = new Set(["CONFIRMED", "PAID"]);
let zones = new Map();
const me = Number(document.getElementById("main").dataset.userId || 0);

async function stationZones() {
  try {
    const data = await get("/api/stations?limit=200");
    const items = Array.isArray(data) ? data : data.items ?? [];
    return new Map(items.map((s) => [s.id, s.timezone]));
  } catch {
    return new Map();
  }
}

/** Slot times carry the station's offset, so without a zone name the wall time is still right. */
function slotLine(b) {
  const start = b.slot_time ?? b.slot_start;
  const tz = zones.get(b.station_id);
  if (tz) return [slotText(start, b.slot_end, tz), `${tz.split("/").pop().replaceAll("_", " ")} time (${tz})`];
  const wall = (iso) => iso.slice(0, 16).replace("T", " ");
  return [`${wall(start)} – ${wall(b.slot_end).slice(11)}`, "station time"];
}

/** The latest payment of each booking, for the receipts. */
async function paymentsByBooking() {
  try {
    const data = await get("/api/payments?limit=200");
    const items = Array.isArray(data) ? data : data.items ?? [];
    const byBooking = new Map();
    for (const p of items) if (p.status !== "FAILED" && !byBooking.has(p.booking_id)) byBooking.set(p.booking_id, p);
    return byBooking;
  } catch {
    return new Map();
  }
}

function receipt(card, b, payment) {
  const box = card.querySelector(".js-receipt");
  if (!payment?.transaction_id) {
    box.hidden = true;
    return;
  }
  const rows = [
    ["Transaction", payment.transaction_id],
    ["Amount", money(payment.amount ?? b.amount_due, payment.currency ?? b.currency)],
    ["Method", METHOD_LABEL[payment.payment_method] ?? payment.payment_method],
    ["Paid", payment.created_at ? dateTimeText(payment.created_at, zones.get(b.station_id) ?? "UTC") : ""],
    ["Refund", payment.status === "REFUNDED" ? "Refunded to the same method" : ""],
    ["Energy delivered", b.energy_wh != null ? `${(b.energy_wh / 1000).toFixed(2)} kWh` : ""],
  ].filter(([, v]) => v);
  box.querySelector("dl").replaceChildren(
    ...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v, class: k === "Transaction" ? "mono" : null }))),
  );
  box.hidden = false;
}

function render(items, payments) {
  list.replaceChildren(
    ...items.map((b) => {
      const id = b.booking_id ?? b.id;
      const card = clone("booking-card");
      card.dataset.bookingId = id;
      card.dataset.status = b.status;
      const link = card.querySelector(".booking-card__station a");
      link.href = `/stations/${b.station_id}`;
      link.textContent = b.station_name ?? `Station ${b.station_id}`;
      const pill = card.querySelector(".status-pill");
      pill.dataset.status = b.status;
      pill.textContent = STATUS_LABEL[b.status] ?? b.status;
      const [when, zone] = slotLine(b);
      card.querySelector(".js-slot").replaceChildren(when, el("span", { class: "zone", text: zone }));
      card.querySelector(".js-charger").textContent =
        [b.charger_number ? `#${b.charger_number}` : "", b.charger_type].filter(Boolean).join(" · ") || "–";
      card.querySelector(".js-amount").textContent = money(b.amount_due, b.currency);
      const hold = card.querySelector(".js-hold");
      if (b.status === "CONFIRMED" && b.hold_expires_at) {
        const tz = zones.get(b.station_id);
        const until = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
          .format(new Date(b.hold_expires_at));
        hold.textContent = `Held for you until ${until}. Pay before then or the slot is released.`;
      } else hold.remove();
      receipt(card, b, payments.get(id));
      const pay = card.querySelector(".js-pay");
      if (b.status === "CONFIRMED") {
        pay.href = `/stations/${b.station_id}?booking=${id}#booking`;
        pay.setAttribute("aria-label", `Pay for booking ${id}`);
      } else pay.remove();
      if (b.status === "PAID" || b.energy_wh != null) chargingControls(card, b, id);
      const cancel = card.querySelector(".js-cancel");
      if (CANCELLABLE.has(b.status)) {
        cancel.setAttribute("aria-label", `Cancel booking ${id} at ${link.textContent}`);
        cancel.addEventListener("click", () => cancelBooking(card, id, cancel));
      } else cancel.remove();
      return card;
    }),
  );
}

/** Inside a paid slot: Start charging, or Stop charging and the running session's figures (the
server checks again: the slot, the booking's own connector, the charger being online). */
function inSlot(b) {
  const now = Date.now();
  return b.status === "PAID" && Date.parse(b.slot_time ?? b.slot_start) <= now && now < Date.parse(b.slot_end);
}

function elapsedText(seconds) {
  const m = Math.floor(seconds / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m} min`;
}

async function chargingControls(card, b, id) {
  const button = card.querySelector(".js-charge");
  const line = card.querySelector(".js-charging");
  let now;
  try {
    now = await get(`/api/bookings/${id}/charging`);
  } catch {
    return;
  }
  if (now.session) {
    const s = now.session;
    line.hidden = false;
    line.textContent = now.charging
      ? `Charging: ${s.energy_kwh.toFixed(2)} kWh · ${s.power_kw} kW · ${elapsedText(s.elapsed_seconds)}`
      : `Last session: ${s.energy_kwh.toFixed(2)} kWh in ${elapsedText(s.elapsed_seconds)}`;
  }
  if (!inSlot(b)) return;
  const action = now.charging ? "stop" : "start";
  button.hidden = false;
  button.textContent = now.charging ? "Stop charging" : "Start charging";
  button.setAttribute("aria-label", `${button.textContent} for booking ${id}`);
  button.onclick = () => charge(card, id, button, action);
  if (now.charging) refreshSoon();
}

let refresh = null;
/** Until the driver's own live channel carries session events, a running session's figures are
refreshed every 10 s while the page is open. */
function refreshSoon() {
  if (refresh) return;
  refresh = setTimeout(() => {
    refresh = null;
    load();
  }, 10_000);
}

async function charge(card, id, button, action) {
  const errorBox = card.querySelector(".js-error");
  showError(errorBox, "");
  try {
    await busy(button, () => post(`/api/bookings/${id}/charging/${action}`), action === "start" ? "Starting…" : "Stopping…");
    announce(action === "start" ? "The charger accepted: charging starts when your car is plugged in." : "Charging stopped.");
    await load();
  } catch (err) {
    showErrorAndFocus(errorBox, messageOf(err));
  }
}

async function cancelBooking(card, id, button) {
  const errorBox = card.querySelector(".js-error");
  showError(errorBox, "");
  try {
    await busy(button, () => post(`/api/bookings/${id}/cancel`), "Cancelling…");
    announce(`Booking ${id} cancelled.`);
    await load();
    // The Cancel button is gone now: keep keyboard focus on the same booking, at its new status.
    const pill = list.querySelector(`[data-booking-id="${id}"] .status-pill`);
    pill?.setAttribute("tabindex", "-1");
    pill?.focus();
  } catch (err) {
    showErrorAndFocus(errorBox, messageOf(err));
  }
}

async function load() {
  try {
    const [data, payments] = await Promise.all([get("/api/bookings?limit=200"), paymentsByBooking()]);
    // Operators are shown everyone's bookings by the API; this page is the signed-in person's own.
    const items = (Array.isArray(data) ? data : data.items ?? []).filter((b) => !me || b.user_id === undefined || b.user_id === me);
    render(items, payments);
    if (items.length) setState(stateBox, "ready");
    else {
      stateBox.dataset.state = "empty";
      stateBox.hidden = false;
      stateBox.replaceChildren(
        el("p", { class: "state__empty", text: "You have no bookings yet." }),
        el("p", {}, el("a", { class: "button", href: "/", text: "Find an open station" })),
      );
    }
  } catch (err) {
    setState(stateBox, "error", `Couldn't load your bookings. ${messageOf(err)}`, { retry: load, loading: "Loading your bookings…" });
  }
}

if (list) {
  stationZones().then((map) => {
    zones = map;
    return load();
  });
}
