// My bookings: status, slot in station time, amount, cancel, receipt.
import { get, messageOf, post } from "./api.js";
import { money, slotText } from "./time.js";
import { $, announce, busy, clone, el, setState, showError } from "./ui.js";

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
  if (tz) return `${slotText(start, b.slot_end, tz)} (${tz})`;
  const wall = (iso) => iso.slice(0, 16).replace("T", " ");
  return `${wall(start)} – ${wall(b.slot_end).slice(11)} station time`;
}

function receipt(card, b) {
  const payment = b.payment ?? (b.transaction_id ? b : null);
  const box = card.querySelector(".js-receipt");
  if (!payment?.transaction_id) {
    box.hidden = true;
    return;
  }
  const rows = [
    ["Transaction", payment.transaction_id],
    ["Amount", money(payment.amount ?? b.amount_due, payment.currency ?? b.currency)],
    ["Method", payment.payment_method],
    ["Status", payment.status ?? payment.payment_status],
  ].filter(([, v]) => v);
  box.querySelector("dl").replaceChildren(
    ...rows.map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v, class: k === "Transaction" ? "mono" : null }))),
  );
  box.hidden = false;
}

function render(items) {
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
      card.querySelector(".js-slot").textContent = slotLine(b);
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
      receipt(card, b);
      const pay = card.querySelector(".js-pay");
      if (b.status === "CONFIRMED") {
        pay.href = `/stations/${b.station_id}?booking=${id}#booking`;
        pay.setAttribute("aria-label", `Pay for booking ${id}`);
      } else pay.remove();
      const cancel = card.querySelector(".js-cancel");
      if (CANCELLABLE.has(b.status)) {
        cancel.setAttribute("aria-label", `Cancel booking ${id} at ${link.textContent}`);
        cancel.addEventListener("click", () => cancelBooking(card, id, cancel));
      } else cancel.remove();
      return card;
    }),
  );
}

async function cancelBooking(card, id, button) {
  const errorBox = card.querySelector(".js-error");
  showError(errorBox, "");
  try {
    await busy(button, () => post(`/api/bookings/${id}/cancel`), "Cancelling…");
    announce(`Booking ${id} cancelled.`);
    await load();
    list.querySelector(`[data-booking-id="${id}"] .status-pill`)?.focus?.();
  } catch (err) {
    showError(errorBox, messageOf(err));
  }
}

async function load() {
  try {
    const data = await get("/api/bookings?limit=100");
    const items = Array.isArray(data) ? data : data.items ?? data.bookings ?? [];
    render(items);
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
    setState(stateBox, "error", `Couldn't load your bookings. ${messageOf(err)}`);
  }
}

if (list) {
  stationZones().then((map) => {
    zones = map;
    return load();
  });
}
