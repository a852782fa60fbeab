// The booking and payment part of the station page, for a signed-in driver.
//
// The station's openness decides what is on screen: while it is closed neither the booking form
// nor the payment section is shown, whatever step the driver was at; both come back when it opens.
import { ApiError, get, messageOf, post } from "./api.js";
import { METHOD_LABEL } from "./status.js";
import { dateTimeText, localDate, localTime, money, slotText, timeText } from "./time.js";
import { $, announce, busy, clearError, el, showError, showErrorAndFocus } from "./ui.js";

const DURATIONS = Array.from({ length: 16 }, (_, i) => (i + 1) * 15);
const HORIZON_DAYS = 7;
const pad = (n) => String(n).padStart(2, "0");
/** Start times every 15 minutes, written on a 24-hour clock whatever the browser's locale. */
const START_TIMES = Array.from({ length: 96 }, (_, i) => `${pad(Math.floor(i / 4))}:${pad((i % 4) * 15)}`);

/** An example plate in the station's country's style, by its zone (a hint, never a rule). */
const PLATE_EXAMPLES = [
  [/^Asia\/(Kolkata|Calcutta)$/, "MH 01 AB 1234"],
  [/^America\//, "7ABC123"],
  [/^Europe\/(London|Dublin)$/, "AB12 CDE"],
  [/^Europe\/Berlin$/, "B AB 1234"],
  [/^Europe\//, "AB-123-CD"],
];

export function platePlaceholder(tz) {
  const found = PLATE_EXAMPLES.find(([zone]) => zone.test(tz));
  return found ? `e.g. ${found[1]}` : "As on your number plate";
}

/** "9 min 05 s" for a hold that runs out soon. */
function leftText(ms) {
  const total = Math.max(0, Math.ceil(ms / 1000));
  const minutes = Math.floor(total / 60);
  return minutes ? `${minutes} min ${pad(total % 60)} s` : `${total} s`;
}

function durationLabel(minutes) {
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (!h) return `${m} min`;
  return m ? `${h} h ${m} min` : `${h} hour${h > 1 ? "s" : ""}`;
}

export function newIdempotencyKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function summaryRows(dl, rows) {
  dl.replaceChildren(
    ...rows.filter(([, v]) => v).map(([k, v]) => el("div", {}, el("dt", { text: k }), el("dd", { text: v }))),
  );
}

export class BookingFlow {
  constructor({ stationId, tz, clock, onClosed }) {
    this.stationId = stationId;
    this.tz = tz;
    this.clock = clock;
    this.onClosed = onClosed;
    this.bookable = false;
    this.mode = "form"; // form | payment | done
    this.booking = null;
    this.quote = null;
    this.attempt = null; // {key, fingerprint} of a payment that may still be settling
    this.form = $("#booking-form");
    this.payment = $("#payment");
    this.paused = $("#payment-paused");
    this.confirmation = $("#confirmation");
    this.slotCheck = $("#slot-check");
    this.checkTimer = null;
    this.checkToken = 0;
    this.formReady = false;
    this.holdTimer = null;
  }

  async start() {
    this.initForm();
    const resume = new URLSearchParams(window.location.search).get("booking");
    if (resume) await this.resume(Number(resume));
    this.render();
  }

  setBookable(bookable) {
    const reopened = bookable && !this.bookable;
    this.bookable = bookable;
    this.render();
    if (reopened && this.mode === "form" && this.formReady) {
      this.bumpPastStart();
      this.queueCheck();
    }
  }

  nextStart() {
    const now = this.clock.now();
    return new Date(Math.ceil((now.getTime() + 60_000) / 900_000) * 900_000);
  }

  /** A start picked while the page sat open may have slipped into the past: move it forward. */
  bumpPastStart() {
    const date = $("#slot-date");
    const time = $("#slot-time");
    const now = this.clock.now();
    date.min = localDate(now, this.tz);
    date.max = localDate(new Date(now.getTime() + HORIZON_DAYS * 86_400_000), this.tz);
    const chosen = `${date.value}T${time.value}`;
    const start = this.nextStart();
    if (!date.value || !time.value || chosen < `${localDate(now, this.tz)}T${localTime(now, this.tz)}`) {
      date.value = localDate(start, this.tz);
      time.value = localTime(start, this.tz);
    }
  }

  setChargers(chargers) {
    const select = $("#charger-type");
    if (!select) return;
    const types = [...new Set(chargers.map((c) => c.charger_type))].sort();
    const current = select.value;
    const options = [el("option", { value: "", text: "Any connector" }), ...types.map((t) => el("option", { value: t, text: t }))];
    select.replaceChildren(...options);
    select.value = types.includes(current) ? current : "";
    if (this.mode === "form") this.queueCheck();
  }

  render() {
    const open = this.bookable;
    const focused = document.activeElement;
    $("#booking-title").textContent = { form: "Book a charging slot", payment: "Your booking", done: "You're booked" }[this.mode];
    this.form.hidden = !(open && this.mode === "form");
    this.payment.hidden = !(open && this.mode === "payment");
    this.paused.hidden = !(!open && this.mode === "payment");
    this.confirmation.hidden = this.mode !== "done";
    $("#book-another").hidden = !open;
    this.renderHold();
    // Keyboard users whose control just vanished (the station closed under them) land on the
    // section heading instead of the top of the page.
    if (focused && focused !== document.body && $("#booking").contains(focused) && !focused.checkVisibility()) {
      $("#booking-title").focus();
    }
  }

  // -- slot picker ------------------------------------------------------------------------

  initForm() {
    this.formReady = true;
    $("#slot-time").replaceChildren(...START_TIMES.map((t) => el("option", { value: t, text: t })));
    $("#vehicle").placeholder = platePlaceholder(this.tz);
    this.bumpPastStart();
    const duration = $("#duration");
    duration.replaceChildren(...DURATIONS.map((m) => el("option", { value: m, text: durationLabel(m), selected: m === 60 })));
    duration.value = "60";
    this.form.addEventListener("input", () => this.queueCheck());
    this.form.addEventListener("change", () => this.queueCheck());
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.book();
    });
    $("#payment-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.pay();
    });
    $("#cancel-booking").addEventListener("click", () => this.askCancel());
    $("#cancel-yes").addEventListener("click", () => this.cancel());
    $("#cancel-no").addEventListener("click", () => this.keepBooking());
    $("#book-another").addEventListener("click", () => this.reset());
    this.queueCheck();
  }

  slotRequest() {
    const data = new FormData(this.form);
    const body = {
      station_id: this.stationId,
      slot_time: `${data.get("slot_date")}T${data.get("slot_time")}:00`,
      duration_minutes: Number(data.get("duration_minutes")),
    };
    const type = data.get("charger_type");
    if (type) body.charger_type = type;
    const vehicle = String(data.get("vehicle_number") || "").trim();
    if (vehicle) body.vehicle_number = vehicle;
    return body;
  }

  queueCheck() {
    clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => this.checkSlot(), 300);
  }

  /** "Book this slot" is offered only for a slot the check found bookable; the reason is in words. */
  setSlotValid(valid) {
    $("#book-button").disabled = !valid;
  }

  async checkSlot() {
    if (!this.bookable || this.mode !== "form") return;
    const data = new FormData(this.form);
    if (!data.get("slot_date") || !data.get("slot_time")) {
      this.slotCheck.dataset.tone = "warn";
      this.slotCheck.textContent = "Choose a date and a start time.";
      $("#slot-price").textContent = "";
      this.setSlotValid(false);
      return;
    }
    const req = this.slotRequest();
    const token = ++this.checkToken;
    const params = new URLSearchParams({ slot_time: req.slot_time, duration_minutes: req.duration_minutes });
    try {
      const result = await get(`/api/stations/${this.stationId}/chargers/available?${params}`);
      if (token !== this.checkToken) return;
      let chargers = Array.isArray(result.chargers) ? result.chargers : [];
      if (req.charger_type) chargers = chargers.filter((c) => c.charger_type === req.charger_type);
      const free = chargers.filter((c) => c.available).length;
      const total = chargers.length;
      let text;
      if (result.reason) {
        text = result.reason; // the words booking itself would refuse with
      } else if (result.within_opening_hours === false) {
        text = "This slot runs outside the station's opening hours. Pick an earlier start or a shorter duration.";
      } else if (free > 0) {
        text = `${free} of ${total} ${req.charger_type ? `${req.charger_type} ` : ""}charger${total === 1 ? "" : "s"} free for this slot.`;
      } else {
        text = "No charger is free for this slot. Try another time or a shorter duration.";
      }
      const valid = !result.reason && result.within_opening_hours !== false && free > 0;
      this.slotCheck.dataset.tone = valid ? "ok" : "warn";
      this.slotCheck.textContent = text;
      $("#slot-price").textContent = result.amount_due
        ? `Total ${money(result.amount_due, result.currency)} for ${durationLabel(req.duration_minutes)}`
        : "";
      this.setSlotValid(valid);
    } catch (err) {
      if (token !== this.checkToken) return;
      this.slotCheck.dataset.tone = "warn";
      this.slotCheck.textContent = err instanceof ApiError && err.status ? messageOf(err) : "";
      $("#slot-price").textContent = "";
      this.setSlotValid(!(err instanceof ApiError && err.status)); // a lost answer: booking checks again
    }
  }

  // -- booking ----------------------------------------------------------------------------

  async book() {
    const errorBox = $("#booking-error");
    clearError(errorBox);
    const data = new FormData(this.form);
    if (!data.get("slot_date") || !data.get("slot_time")) {
      showErrorAndFocus(errorBox, "Choose a date and a start time.");
      return;
    }
    try {
      const booking = await busy($("#book-button"), () => post("/api/bookings", this.slotRequest()), "Booking…");
      this.booking = booking;
      this.attempt = null;
      await this.loadQuote();
      this.showPayment();
      announce(`Charger ${booking.charger_number} is held for you. Complete the payment to confirm.`);
    } catch (err) {
      showErrorAndFocus(errorBox, messageOf(err));
      if (err.code === "hold_limit_reached") {
        // The way out is paying for or cancelling a held booking, which My bookings offers.
        errorBox.append(" ", el("a", { href: "/bookings", text: "Pay for or cancel one in My bookings" }));
      }
      if (err.code === "station_closed") this.onClosed?.().catch(() => {});
    }
  }

  async resume(bookingId) {
    try {
      const booking = await get(`/api/bookings/${bookingId}`);
      if (booking.status !== "CONFIRMED" || Number(booking.station_id) !== this.stationId) return;
      this.booking = { ...booking, booking_id: booking.booking_id ?? booking.id };
      await this.loadQuote();
      this.showPayment();
    } catch {
      // Not ours, gone or already paid: the normal form is the right thing to show.
    }
  }

  async loadQuote() {
    const id = this.booking.booking_id;
    try {
      this.quote = await get(`/api/bookings/${id}/quote`);
    } catch {
      this.quote = { amount_due: this.booking.amount_due, currency: this.booking.currency };
    }
  }

  showPayment() {
    const b = this.booking;
    const amount = this.quote?.amount_due ?? b.amount_due;
    const currency = this.quote?.currency ?? b.currency;
    summaryRows($("#booking-summary"), [
      ["Booking", `#${b.booking_id}`],
      ["Charger", b.charger_number ? `#${b.charger_number}` : ""],
      ["Slot", slotText(b.slot_time ?? b.slot_start, b.slot_end, this.tz)],
      ["Vehicle", b.vehicle_number ?? ""],
    ]);
    $("#amount-due").textContent = money(amount, currency);
    $("#cancel-policy").textContent =
      `Cancelling is free until your slot starts (${dateTimeText(b.slot_time ?? b.slot_start, this.tz)}): ` +
      `before you pay nothing is charged, after paying you get the full ${money(amount, currency)} back. ` +
      "Once the slot has started it can no longer be cancelled.";
    clearError($("#payment-error"));
    $("#cancel-confirm").hidden = true;
    $("#pay-button").disabled = false;
    this.mode = "payment";
    this.render();
    if (!this.payment.hidden) $("#payment-title").focus();
  }

  paymentBody() {
    const method = new FormData($("#payment-form")).get("payment_method");
    return {
      booking_id: this.booking.booking_id,
      payment_method: method,
      amount: String(this.quote?.amount_due ?? this.booking.amount_due),
    };
  }

  async pay() {
    const errorBox = $("#payment-error");
    clearError(errorBox);
    const body = this.paymentBody();
    const fingerprint = JSON.stringify(body);
    // A retry of the very same payment after a lost answer reuses its key, so it is never charged twice.
    if (!this.attempt || this.attempt.fingerprint !== fingerprint) {
      this.attempt = { key: newIdempotencyKey(), fingerprint };
    }
    const key = this.attempt.key;
    try {
      const result = await busy(
        $("#pay-button"),
        () => post("/api/payments/process", body, { headers: { "Idempotency-Key": key } }),
        "Processing…",
      );
      this.attempt = null;
      this.showConfirmation(result);
    } catch (err) {
      const retrySame = err.status === 0 || err.code === "idempotency_in_progress";
      if (!retrySame) this.attempt = null;
      showErrorAndFocus(errorBox, messageOf(err));
      if (err.code === "station_closed") this.onClosed?.().catch(() => {});
      if (err.code === "booking_not_payable") {
        showError(errorBox, `${messageOf(err)} Your hold may have expired: please book again.`);
        $("#cancel-booking").textContent = "Start again";
      }
    }
  }

  showConfirmation(result) {
    const b = this.booking;
    summaryRows($("#confirmation-summary"), [
      ["Transaction", result.transaction_id],
      ["Amount paid", money(result.amount, result.currency)],
      ["Method", METHOD_LABEL[result.payment_method] ?? result.payment_method],
      ["Charger", b.charger_number ? `#${b.charger_number}` : ""],
      ["Slot", slotText(b.slot_time ?? b.slot_start, b.slot_end, this.tz)],
      ["Vehicle", b.vehicle_number ?? ""],
      ["Booking", `#${b.booking_id}`],
    ]);
    const txn = $("#confirmation-summary dd");
    if (txn) txn.classList.add("mono");
    this.mode = "done";
    this.render();
    this.confirmation.focus();
    announce(`Payment complete. Transaction ${result.transaction_id}.`);
  }

  // -- the hold: a live countdown, and what "payment paused" may promise ----------------------

  /** The hold is never extended, not even while the station is closed: say when it runs out. */
  renderHold() {
    clearTimeout(this.holdTimer);
    const until = this.mode === "payment" ? this.booking?.hold_expires_at : null;
    if (!until) return;
    const left = Date.parse(until) - this.clock.now().getTime();
    const at = timeText(until, this.tz);
    const countdown = $("#hold-countdown");
    const pausedText = $("#payment-paused-text");
    if (left > 0) {
      countdown.textContent = `Charger held for you for ${leftText(left)} more, until ${at}.`;
      pausedText.textContent =
        `The station has closed. Your charger stays held until ${at} (${leftText(left)} left), and no longer: ` +
        "if the station reopens before then you can pay; if not, the hold runs out and the slot is released.";
      this.holdTimer = setTimeout(() => this.renderHold(), 1000 - (this.clock.now().getTime() % 1000) + 5);
    } else {
      countdown.textContent = `Your hold ran out at ${at} and the slot has been released. Start again to book it.`;
      pausedText.textContent = `The station has closed, and your hold ran out at ${at}: the slot has been released.`;
      $("#pay-button").disabled = true;
      $("#cancel-booking").textContent = "Start again";
    }
  }

  // -- cancelling -------------------------------------------------------------------------

  /** Cancelling asks first, and says what happens to the money (nothing is charged before paying). */
  askCancel() {
    const b = this.booking;
    if (!b || $("#cancel-booking").textContent === "Start again") {
      this.reset();
      return;
    }
    $("#cancel-confirm-text").textContent =
      `Cancel booking #${b.booking_id}? You have not paid, so nothing is charged and there is nothing to refund; ` +
      `charger #${b.charger_number} is released for others.`;
    $("#cancel-confirm").hidden = false;
    $("#cancel-confirm-text").focus();
  }

  keepBooking() {
    $("#cancel-confirm").hidden = true;
    $("#cancel-booking").focus();
  }

  async cancel() {
    const errorBox = $("#payment-error");
    clearError(errorBox);
    const b = this.booking;
    if (b) {
      try {
        await busy($("#cancel-yes"), () => post(`/api/bookings/${b.booking_id}/cancel`), "Cancelling…");
        announce("Booking cancelled.");
      } catch (err) {
        if (err.code !== "not_found" && err.code !== "booking_not_payable") {
          showErrorAndFocus(errorBox, messageOf(err));
          return;
        }
      }
    }
    this.reset();
  }

  reset() {
    this.bumpPastStart();
    this.booking = null;
    this.quote = null;
    this.attempt = null;
    $("#cancel-booking").textContent = "Cancel booking";
    $("#cancel-confirm").hidden = true;
    this.mode = "form";
    this.render();
    this.queueCheck();
    if (!this.form.hidden) $("#slot-date").focus();
  }
}
