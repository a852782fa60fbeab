// My bookings: status, slot in station time, amount, cancel, receipt.
import { get, messageOf, post } from "./api.js";
import { boundaryReloader, chargingControls, followSessions } from "./charging.js";
import { METHOD_LABEL } from "./status.js";
import { dateTimeText, money, slotText, zoneNameWithId } from "./time.js";
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
const WHY = {
  station_closed: "Cancelled for you: the station is closed during this slot.",
  station_inactive: "Cancelled for you: the station stopped taking bookings.",
  charger_out_of_service: "Cancelled for you: the charger is out of service and no other one of its type was free.",
  charger_fault: "Cancelled for you: the charger reported a fault and no other one of its type was free.",
};
const EVENT_LABEL = {
  created: "Booked",
  paid: "Paid",
  moved: "Moved",
  cancelled: "Cancelled",
  expired: "Hold ran out",
  completed: "Completed",
  reminder_sent: "Reminder",
  reservation_sent: "Charger reserved",
  reservation_refused: "Charger refused the reservation",
  reservation_cancelled: "Reservation released",
  command_failed: "Charger not reached",
  no_show: "No-show",
};

/** Cancelling is offered by the API's own rule (`cancellable`: not for a paid slot that has started). */
function canCancel(b) {
  return typeof b.cancellable === "boolean" ? b.cancellable : CANCELLABLE.has(b.status);
}

/** What cancelling does to the money, said before the driver confirms. */
function refundText(b, payment) {
  if (b.status !== "PAID") return "You have not paid, so nothing is charged and there is nothing to refund.";
  const method = payment ? ` to your ${METHOD_LABEL[payment.payment_method] ?? payment.payment_method}` : "";
  return `You get a full refund of ${money(payment?.amount ?? b.amount_due, payment?.currency ?? b.currency)}${method}.`;
}

/** The vehicle on the card and its receipt, when the driver gave one. */
function showVehicle(card, b) {
  if (b.vehicle_number) card.querySelector(".js-vehicle").textContent = b.vehicle_number;
  else card.querySelector(".js-vehicle-row").remove();
}

/** Cancel asks first, in the card: the refund is stated, "Keep booking" leaves everything as it was. */
function offerCancel(card, b, id, payment, stationName) {
  const cancel = card.querySelector(".js-cancel");
  const box = card.querySelector(".js-confirm");
  const text = card.querySelector(".js-confirm-text");
  cancel.setAttribute("aria-label", `Cancel booking ${id} at ${stationName}`);
  box.setAttribute("aria-label", `Cancel booking ${id}?`);
  cancel.addEventListener("click", () => {
    text.textContent = `Cancel this booking at ${stationName}? ${refundText(b, payment)}`;
    box.hidden = false;
    text.focus();
  });
  card.querySelector(".js-confirm-no").addEventListener("click", () => {
    box.hidden = true;
    cancel.focus();
  });
  const yes = card.querySelector(".js-confirm-yes");
  yes.addEventListener("click", () => cancelBooking(card, id, yes));
}
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
  if (tz) return [slotText(start, b.slot_end, tz), zoneNameWithId(tz)];
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
    ["Vehicle", b.vehicle_number ?? ""],
    ["Amount", money(payment.amount ?? b.amount_due, payment.currency ?? b.currency)],
    ["Method", METHOD_LABEL[payment.payment_method] ?? payment.payment_method],
    ["Paid", payment.created_at ? dateTimeText(payment.created_at, zones.get(b.station_id) ?? "UTC") : ""],
    ["Refund", { REFUNDED: "Refunded to the same method", REFUND_PENDING: "Refund under way" }[payment.status] ?? ""],
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
      showVehicle(card, b);
      const hold = card.querySelector(".js-hold");
      if (b.status === "CONFIRMED" && b.hold_expires_at) {
        const tz = zones.get(b.station_id);
        const until = new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
          .format(new Date(b.hold_expires_at));
        hold.textContent = `Held for you until ${until}. Pay before then or the slot is released.`;
      } else hold.remove();
      receipt(card, b, payments.get(id));
      const why = card.querySelector(".js-why");
      if (b.status === "CANCELLED" && WHY[b.cancel_reason]) {
        why.textContent = WHY[b.cancel_reason];
        why.hidden = false;
      }
      const history = card.querySelector(".js-history");
      history.addEventListener("toggle", () => history.open && showHistory(history, id, b.station_id), { once: false });
      const calendar = card.querySelector(".js-calendar");
      if (CANCELLABLE.has(b.status)) {
        calendar.href = `/api/bookings/${id}/calendar.ics`;
        calendar.setAttribute("aria-label", `Add to calendar: booking ${id}`);
      } else calendar.remove();
      const pay = card.querySelector(".js-pay");
      if (b.status === "CONFIRMED") {
        pay.href = `/stations/${b.station_id}?booking=${id}#booking`;
        pay.setAttribute("aria-label", `Pay now for booking ${id}`);
      } else pay.remove();
      if (canCancel(b)) offerCancel(card, b, id, payments.get(id), link.textContent);
      else card.querySelector(".js-cancel").remove();
      if (b.status === "PAID" || b.energy_wh != null) chargingControls(card, b, id, load);
      return card;
    }),
  );
}

/** The booking's history, read when its "What happened" is opened. */
async function showHistory(box, id, stationId) {
  const status = box.querySelector(".js-history-state");
  const tz = zones.get(stationId) ?? "UTC";
  status.hidden = false;
  status.textContent = "Loading…";
  try {
    const detail = await get(`/api/bookings/${id}`);
    const lines = detail.history.map((line) =>
      el("li", {}, el("strong", { text: `${EVENT_LABEL[line.event] ?? line.event} · ${dateTimeText(line.at, tz)}` }), ` ${line.detail}`),
    );
    if (detail.refund) {
      const state = detail.refund.status === "REFUNDED" ? "refunded" : "refund under way";
      lines.push(el("li", {}, el("strong", { text: "Refund" }), ` ${money(detail.refund.amount, detail.refund.currency)}: ${state}`));
    }
    box.querySelector("ol").replaceChildren(...lines);
    status.hidden = lines.length > 0;
    status.textContent = lines.length ? "" : "Nothing recorded yet.";
  } catch (err) {
    status.textContent = `Couldn't load what happened. ${messageOf(err)}`;
  }
}

followSessions((bookingId) => list.querySelector(`[data-booking-id="${bookingId}"]`), () => load());

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

const reloadAtNextBoundary = boundaryReloader(() => load());

async function load() {
  try {
    const [data, payments] = await Promise.all([get("/api/bookings?limit=200"), paymentsByBooking()]);
    // Operators are shown everyone's bookings by the API; this page is the signed-in person's own.
    const items = (Array.isArray(data) ? data : data.items ?? []).filter((b) => !me || b.user_id === undefined || b.user_id === me);
    render(items, payments);
    reloadAtNextBoundary(items);
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
  document.addEventListener("chargeslot:notification", (event) => {
    if (event.detail?.booking_id) load();
  });
  stationZones().then((map) => {
    zones = map;
    return load();
  });
}
