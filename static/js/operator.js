// Operator pages: station list, create and edit, weekly hours, exceptional periods and chargers.
import { ApiError, del, get, messageOf, patch, post, put } from "./api.js";
import { ChargePointsSection } from "./charge-points.js";
import { askToConfirm } from "./confirm.js";
import { clearFieldErrors, showFieldErrors } from "./field-errors.js";
import { HoursEditor } from "./hours-editor.js";
import { LiveChannel } from "./live.js";
import { chargerState, powerText } from "./status.js";
import { dateTimeText, todayHoursText, zonedToInstant } from "./time.js";
import { $, announce, busy, el, setBadge, setState, showError } from "./ui.js";

const main = $("#main");
const view = main.dataset.view;
const stationId = Number(main.dataset.stationId || 0);
const errorBox = $("#op-error");
let station = null;

function flash(id, text) {
  const box = $(id);
  if (!box) return;
  box.textContent = text;
  announce(text);
  setTimeout(() => {
    if (box.textContent === text) box.textContent = "";
  }, 4000);
}

/** Run `work` with `button` busy; on failure say why, above and (for `form`) next to each field. */
async function guarded(button, work, busyText = "Saving…", form = null) {
  showError(errorBox, "");
  if (form) clearFieldErrors(form);
  try {
    return await busy(button, work, busyText);
  } catch (err) {
    report(err, form);
    return undefined;
  }
}

function report(err, form) {
  showError(errorBox, messageOf(err));
  const marked = form && err instanceof ApiError ? showFieldErrors(form, err.errors, fieldFinder(form)) : [];
  if (marked.length) marked[0].focus();
  else errorBox.scrollIntoView({ block: "nearest" });
}

/** The input a problem's field path names: a weekly period's row in the hours editor, else the
 * form's control of that name (`timezone`, `period_end`, …). */
function fieldFinder(form) {
  return (path) => {
    const at = path.indexOf("regular_hours");
    const editor = form.contains(hoursEditor?.root) ? hoursEditor : form.contains(newEditor?.root) ? newEditor : null;
    if (at >= 0 && editor) return editor.inputFor(path[at + 1], path[at + 2]);
    const name = [...path].reverse().find((part) => typeof part === "string");
    const input = name ? form.elements.namedItem(name) : null;
    return input instanceof HTMLElement ? input : null;
  };
}

function bookingCount(n) {
  return `${n} booking${n === 1 ? "" : "s"}`;
}

/** "This affects 3 bookings: 2 will be moved, 1 cancelled and refunded." */
function consequences({ moved, cancelled }) {
  return `This affects ${bookingCount(moved + cancelled)}: ${moved} will be moved, ${cancelled} cancelled and refunded.`;
}

/** What a change did to bookings, for the line that confirms it; "" when it touched none. */
function outcome(affected) {
  if (!affected || affected.moved + affected.cancelled === 0) return "";
  const parts = [];
  if (affected.moved) parts.push(`${bookingCount(affected.moved)} moved to another charger`);
  if (affected.cancelled) parts.push(`${bookingCount(affected.cancelled)} cancelled and refunded`);
  return ` ${parts.join(", ")}; the drivers see it on their bookings.`;
}

/**
 * A change that may make booked slots impossible (DESIGN §13). It is sent first with
 * `?dry_run=true`, which changes nothing; when bookings would be moved or cancelled the operator is
 * told how many and must confirm before the real request is sent. `send(dryRun)` makes the request.
 * Returns the real answer and what it did to bookings, or undefined when cancelled or refused.
 */
async function changeWithConsequences(button, send, { busyText = "Saving…", form = null, anchor = button } = {}) {
  const preview = await guarded(button, () => send(true), "Checking…", form);
  if (preview === undefined) return undefined;
  const affected = preview?.affected_bookings;
  if (affected && affected.moved + affected.cancelled > 0) {
    const go = await askToConfirm(anchor, consequences(affected), { yes: "Confirm change", no: "Cancel" });
    if (!go) {
      announce("Nothing was changed.");
      button.focus();
      return undefined;
    }
  }
  const done = await guarded(button, () => send(false), busyText, form);
  if (done === undefined) return undefined;
  return { done, affected: done?.affected_bookings ?? affected };
}

const dry = (path, dryRun) => (dryRun ? `${path}?dry_run=true` : path);

// -- list -------------------------------------------------------------------------------------

async function showList() {
  const table = $("#op-stations");
  const stateBox = $("#op-state");
  try {
    const data = await get("/api/stations?limit=200&include_inactive=true");
    const items = Array.isArray(data) ? data : data.items ?? [];
    if (!items.length) {
      setState(stateBox, "empty", "No stations yet. Create the first one.");
      return;
    }
    const badges = new Map();
    table.querySelector("tbody").replaceChildren(
      ...items.map((s) => {
        const badge = el("span", { class: "badge" });
        setBadge(badge, s.is_open);
        badges.set(s.id, badge);
        return el(
          "tr",
          { "data-station-id": s.id },
          el("th", { scope: "row", "data-label": "Station" }, el("a", { href: `/operator/stations/${s.id}`, text: s.name })),
          el("td", { "data-label": "City", text: s.city }),
          el("td", { "data-label": "Now" }, badge),
          el("td", { "data-label": "Today", text: `${todayHoursText(s.open_time, s.close_time)} · ${s.timezone}` }),
          el("td", { "data-label": "Chargers", text: `${s.total_chargers ?? "–"} (${s.available_chargers ?? "–"} free)` }),
          el("td", { "data-label": "Status", text: s.status.charAt(0) + s.status.slice(1).toLowerCase() }),
          el(
            "td",
            { class: "row-actions" },
            el("a", { class: "button button--small", href: `/operator/stations/${s.id}`, text: "Edit", "aria-label": `Edit ${s.name}` }),
            el("a", { class: "button button--ghost button--small", href: `/kiosk/${s.id}`, text: "Kiosk", "aria-label": `Kiosk board of ${s.name}` }),
          ),
        );
      }),
    );
    table.hidden = false;
    setState(stateBox, "ready");
    followBadges(badges);
  } catch (err) {
    setState(stateBox, "error", `Couldn't load stations. ${messageOf(err)}`, { retry: showList, loading: "Loading stations…" });
  }
}

let listChannel = null;

/** Keep each row's Open/Closed badge current as stations open and close. */
function followBadges(badges) {
  listChannel?.stop();
  const show = (update) => {
    const badge = badges.get(update.station_id);
    if (badge && typeof update.is_open === "boolean") setBadge(badge, update.is_open);
  };
  listChannel = new LiveChannel({
    path: `/ws/stations?ids=${[...badges.keys()].join(",")}`,
    onMessage: (msg) => (msg.type === "snapshot" ? (msg.stations ?? []).forEach(show) : show(msg)),
  });
  listChannel.start();
}

// -- station details --------------------------------------------------------------------------

function fillTimezones() {
  const list = $("#tz-list");
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  list.replaceChildren(...zones.map((z) => el("option", { value: z })));
}

function detailsBody() {
  const form = $("#station-form");
  const data = new FormData(form);
  const text = (k) => String(data.get(k) || "").trim();
  return {
    name: text("name"),
    location: text("location"),
    city: text("city"),
    latitude: Number(text("latitude")),
    longitude: Number(text("longitude")),
    timezone: text("timezone"),
    price_per_hour: text("price_per_hour"),
    currency: text("currency").toUpperCase(),
    status: text("status"),
  };
}

function firstInvalid(form) {
  return Array.from(form.querySelectorAll("input, select")).find((i) => !i.checkValidity()) ?? null;
}

function labelOf(input) {
  return document.querySelector(`label[for="${input.id}"]`)?.textContent ?? input.getAttribute("aria-label") ?? input.name;
}

function fillDetails(s) {
  const form = $("#station-form");
  for (const key of ["name", "location", "city", "latitude", "longitude", "timezone", "price_per_hour", "currency", "status"]) {
    const input = form.elements.namedItem(key);
    if (input && s[key] !== undefined && s[key] !== null) input.value = s[key];
  }
}

async function saveDetails(event, hoursEditor) {
  event.preventDefault();
  const form = event.currentTarget;
  const bad = firstInvalid(form) ?? hoursEditor?.firstInvalid();
  if (bad) {
    showError(errorBox, `Check “${labelOf(bad)}”.`);
    bad.focus();
    return;
  }
  const button = form.querySelector("button[type=submit]");
  const body = detailsBody();
  if (view === "new") {
    body.hours = hoursEditor.value();
    const count = Number($("#new-count").value || 0);
    body.chargers = Array.from({ length: count }, () => ({ charger_type: $("#new-type").value, power_kw: Number($("#new-power").value) }));
    const created = await guarded(button, () => post("/api/stations", body), "Creating…", form);
    if (created) window.location.assign(`/operator/stations/${created.id ?? created.station_id}`);
    return;
  }
  const saved = await changeWithConsequences(button, (dryRun) => patch(dry(`/api/stations/${stationId}`, dryRun), body), { form, anchor: form.querySelector(".actions") });
  if (saved) {
    flash("#station-saved", `Details saved.${outcome(saved.affected)}`);
    await reload();
  }
}

// -- hours and exceptions ---------------------------------------------------------------------

function exceptionRows(s) {
  return [...(s.exceptions ?? [])].sort((a, b) => Date.parse(a.period_begin) - Date.parse(b.period_begin));
}

function renderExceptions() {
  const tz = station.timezone;
  const rows = exceptionRows(station);
  const list = $("#exc-list");
  if (!rows.length) {
    list.replaceChildren(el("li", { class: "exc-list__empty", text: "None planned." }));
    return;
  }
  list.replaceChildren(
    ...rows.map((p) => {
      const what = `${p.kind === "closing" ? "Closed" : "Open"} ${dateTimeText(p.period_begin, tz)} – ${dateTimeText(p.period_end, tz)}`;
      const remove = el("button", { type: "button", class: "button button--danger-ghost button--small", text: "Remove", "aria-label": `Remove: ${what}` });
      remove.addEventListener("click", () => removeException(p, remove));
      return el("li", { "data-kind": p.kind }, el("span", { class: "pill", "data-kind": p.kind, text: p.kind }), el("span", { text: what }), remove);
    }),
  );
}

async function removeException(p, button) {
  const path = `/api/stations/${stationId}/exceptions/${p.id}`;
  const removed = await changeWithConsequences(button, (dryRun) => del(dry(path, dryRun)), { busyText: "Removing…", anchor: button.closest("li") });
  if (removed) {
    flash("#exc-saved", `Removed.${outcome(removed.affected)}`);
    await reload();
  }
}

async function addException(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const bad = firstInvalid(form);
  if (bad) {
    showError(errorBox, `Check “${labelOf(bad)}”.`);
    bad.focus();
    return;
  }
  const tz = station.timezone;
  const body = {
    kind: $("#exc-kind").value,
    period_begin: zonedToInstant($("#exc-begin").value, tz).toISOString(),
    period_end: zonedToInstant($("#exc-end").value, tz).toISOString(),
  };
  const button = form.querySelector("button[type=submit]");
  const path = `/api/stations/${stationId}/exceptions`;
  const added = await changeWithConsequences(button, (dryRun) => post(dry(path, dryRun), body), { busyText: "Adding…", form, anchor: form.querySelector(".actions") });
  if (added) {
    form.reset();
    flash("#exc-saved", `Added.${outcome(added.affected)}`);
    await reload();
  }
}

async function saveHours(event, editor) {
  event.preventDefault();
  const form = event.currentTarget;
  const bad = editor.firstInvalid();
  if (bad) {
    showError(errorBox, "Every period needs an opening and a closing time.");
    bad.focus();
    return;
  }
  const strip = (list) => (list ?? []).map(({ period_begin, period_end }) => ({ period_begin, period_end }));
  const body = {
    ...editor.value(),
    exceptional_openings: strip(station.hours?.exceptional_openings),
    exceptional_closings: strip(station.hours?.exceptional_closings),
  };
  const button = form.querySelector("button[type=submit]");
  const path = `/api/stations/${stationId}/hours`;
  const saved = await changeWithConsequences(button, (dryRun) => put(dry(path, dryRun), body), { form, anchor: form.querySelector(".actions") });
  if (saved) {
    flash("#hours-saved", `Hours saved. Drivers and kiosks see the change now.${outcome(saved.affected)}`);
    await reload({ keepHours: false });
  }
}

// -- chargers ---------------------------------------------------------------------------------

function renderChargers() {
  const body = $("#op-chargers tbody");
  const chargers = [...(station.chargers ?? [])].sort((a, b) => a.charger_number - b.charger_number);
  if (!chargers.length) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 5, text: "No chargers yet." })));
    return;
  }
  body.replaceChildren(
    ...chargers.map((c) => {
      const out = c.status === "OUT_OF_SERVICE";
      const toggle = el("button", {
        type: "button",
        class: `button button--small ${out ? "" : "button--ghost"}`,
        text: out ? "Return to service" : "Take out of service",
        // The accessible name starts with the visible words (WCAG 2.5.3), then says which charger.
        "aria-label": `${out ? "Return to service" : "Take out of service"}: charger ${c.charger_number}`,
      });
      toggle.addEventListener("click", async () => {
        const next = out ? "AVAILABLE" : "OUT_OF_SERVICE";
        const path = `/api/stations/${stationId}/chargers/${c.id}`;
        const changed = await changeWithConsequences(toggle, (dryRun) => patch(dry(path, dryRun), { status: next }), { anchor: $("#op-chargers").closest(".table-wrap") });
        if (changed) {
          flash("#ch-saved", `Charger ${c.charger_number} ${out ? "is back in service" : "is out of service"}.${outcome(changed.affected)}`);
          await reload();
        }
      });
      const state = chargerState(c);
      return el(
        "tr",
        { "data-charger-id": c.id },
        el("th", { scope: "row", "data-label": "Charger", text: c.charger_number }),
        el("td", { "data-label": "Connector", text: c.charger_type }),
        el("td", { "data-label": "Power", text: powerText(c.power_kw) }),
        el("td", { "data-label": "Now" }, el("span", { class: "chip", "data-state": state.key, text: state.label })),
        el("td", { class: "row-actions" }, toggle),
      );
    }),
  );
}

async function addCharger(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const body = { charger_type: $("#ch-type").value, power_kw: Number($("#ch-power").value) };
  const done = await guarded(form.querySelector("button[type=submit]"), () => post(`/api/stations/${stationId}/chargers`, body), "Adding…", form);
  if (done !== undefined) {
    flash("#ch-saved", "Charger added.");
    await reload();
  }
}

// -- wiring -----------------------------------------------------------------------------------

let hoursEditor = null;
let newEditor = null;
let chargePoints = null;

async function reload({ keepHours = true } = {}) {
  station = await get(`/api/stations/${stationId}`);
  setBadge($("#op-badge"), station.is_open);
  renderExceptions();
  renderChargers();
  await chargePoints?.load(station.chargers);
  if (!keepHours) hoursEditor.set(station.hours);
}

async function showEdit() {
  fillTimezones();
  hoursEditor = new HoursEditor($("#hours-editor"));
  try {
    station = await get(`/api/stations/${stationId}`);
  } catch (err) {
    showError(errorBox, `Couldn't load this station. ${messageOf(err)}`);
    return;
  }
  fillDetails(station);
  hoursEditor.set(station.hours);
  setBadge($("#op-badge"), station.is_open);
  renderExceptions();
  renderChargers();
  $("#station-form").addEventListener("submit", (e) => saveDetails(e, null));
  $("#hours-form").addEventListener("submit", (e) => saveHours(e, hoursEditor));
  $("#exc-form").addEventListener("submit", addException);
  $("#charger-form").addEventListener("submit", addCharger);
  chargePoints = new ChargePointsSection(stationId, station.timezone, errorBox, () => reload());
  await chargePoints.load(station.chargers);
  followStation();
}

/** The badge and the chargers' "free now" follow the station live, as the driver pages do. */
function followStation() {
  const channel = new LiveChannel({
    path: `/ws/stations/${stationId}`,
    onMessage: (msg) => {
      if (typeof msg.is_open === "boolean") setBadge($("#op-badge"), msg.is_open);
      if (Array.isArray(msg.chargers) && station) {
        const now = new Map(msg.chargers.map((c) => [c.id, c]));
        station.chargers = (station.chargers ?? []).map((c) => ({ ...c, ...(now.get(c.id) ?? {}) }));
        renderChargers();
        chargePoints?.follow(msg.chargers, station.chargers);
      }
    },
    onGap: () => reload().catch(() => {}),
  });
  channel.start();
}

function showNew() {
  fillTimezones();
  const editor = new HoursEditor($("#hours-editor-new"));
  newEditor = editor;
  editor.set({ twentyfourseven: false, regular_hours: Array.from({ length: 7 }, (_, i) => ({ weekday: i + 1, period_begin: "08:00", period_end: "20:00" })) });
  $("#st-status").value = "ACTIVE";
  $("#st-tz").value = Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("#station-form").addEventListener("submit", (e) => saveDetails(e, editor));
}

if (view === "list") showList();
else if (view === "edit") showEdit();
else if (view === "new") showNew();
