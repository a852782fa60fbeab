// A paid booking's charging controls, shared by My bookings and the station page: inside the slot
// "Start charging" / "Stop charging", and the running session's energy, power and elapsed time,
// which follow the driver's `session` events (the `chargeslot:session` DOM event of notices.js).
// A box holds `.js-charge` (the button), `.js-charging` (the figures) and `.js-error`.
import { get, messageOf, post } from "./api.js";
import { announce, busy, showError, showErrorAndFocus } from "./ui.js";

const startOf = (b) => Date.parse(b.slot_time ?? b.slot_start);

/** Inside a paid slot (the server checks again: the slot, the booking's own connector, the
charger being online). */
export function inSlot(b, now = Date.now()) {
  return b.status === "PAID" && startOf(b) <= now && now < Date.parse(b.slot_end);
}

function elapsedText(seconds) {
  const m = Math.floor(seconds / 60);
  return m >= 60 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min` : `${m} min`;
}

function runningText(s) {
  return `Charging: ${Number(s.energy_kwh).toFixed(2)} kWh · ${s.power_kw} kW · ${elapsedText(s.elapsed_seconds)}`;
}

/** Draws the box from `GET /api/bookings/{id}/charging`; `reload` is called after a start or stop. */
export async function chargingControls(box, b, id, reload) {
  const button = box.querySelector(".js-charge");
  const line = box.querySelector(".js-charging");
  let now;
  try {
    now = await get(`/api/bookings/${id}/charging`);
  } catch {
    return;
  }
  if (now.session) {
    const s = now.session;
    line.hidden = false;
    line.textContent = now.charging ? runningText(s) : `Last session: ${s.energy_kwh.toFixed(2)} kWh in ${elapsedText(s.elapsed_seconds)}`;
  }
  if (!inSlot(b)) return;
  const action = now.charging ? "stop" : "start";
  button.hidden = false;
  button.textContent = now.charging ? "Stop charging" : "Start charging";
  button.setAttribute("aria-label", `${button.textContent} for booking ${id}`);
  button.onclick = () => charge(box, id, button, action, reload);
}

async function charge(box, id, button, action, reload) {
  const errorBox = box.querySelector(".js-error");
  showError(errorBox, "");
  try {
    await busy(button, () => post(`/api/bookings/${id}/charging/${action}`), action === "start" ? "Starting…" : "Stopping…");
    announce(action === "start" ? "The charger accepted: charging starts when your car is plugged in." : "Charging stopped.");
    await reload();
  } catch (err) {
    showErrorAndFocus(errorBox, messageOf(err));
  }
}

/** Session events move the figures of the box `boxOf(bookingId)` finds; a session that starts or
stops changes the button, so `reload` draws it again. */
export function followSessions(boxOf, reload) {
  document.addEventListener("chargeslot:session", (event) => {
    const s = event.detail;
    const box = boxOf(s.booking_id);
    if (!box) return;
    const button = box.querySelector(".js-charge");
    if (s.stopped_at || (button && !button.hidden && button.textContent === "Start charging")) {
      reload();
      return;
    }
    const line = box.querySelector(".js-charging");
    line.hidden = false;
    line.textContent = runningText(s);
  });
}

/** Start charging hangs on a slot having started or ended, which no event announces: `reload` is
called again at the next start or end of one of the paid `items`, so a page left open shows the
button when the slot begins. Returns the function that (re)arms the timer. */
export function boundaryReloader(reload) {
  let timer;
  return (items) => {
    clearTimeout(timer);
    const now = Date.now();
    const instants = items
      .filter((b) => b.status === "PAID")
      .flatMap((b) => [startOf(b), Date.parse(b.slot_end)])
      .filter((t) => t > now);
    if (!instants.length) return;
    const SIX_HOURS = 6 * 3600 * 1000; // far timers are re-armed by the read they cause
    timer = setTimeout(reload, Math.min(Math.min(...instants) - now + 250, SIX_HOURS));
  };
}
