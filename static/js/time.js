// Times and money as a driver reads them: always in the station's own zone, never the browser's.

const partsCache = new Map();

function formatter(tz) {
  let f = partsCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", weekday: "short",
    });
    partsCache.set(tz, f);
  }
  return f;
}

/** Wall-clock fields of an instant in zone `tz`. */
export function zoneParts(instant, tz) {
  const out = {};
  for (const p of formatter(tz).formatToParts(instant)) out[p.type] = p.value;
  return {
    year: +out.year, month: +out.month, day: +out.day,
    hour: +out.hour % 24, minute: +out.minute, second: +out.second, weekday: out.weekday,
  };
}

const pad = (n) => String(n).padStart(2, "0");

/** `YYYY-MM-DD` and `HH:MM` of an instant in zone `tz` (for date and time inputs). */
export function localDate(instant, tz) {
  const p = zoneParts(instant, tz);
  return `${p.year}-${pad(p.month)}-${pad(p.day)}`;
}
export function localTime(instant, tz) {
  const p = zoneParts(instant, tz);
  return `${pad(p.hour)}:${pad(p.minute)}`;
}

/** The instant a station-local wall time (`YYYY-MM-DDTHH:MM`) stands for in zone `tz`. */
export function zonedToInstant(local, tz) {
  const [d, t = "00:00"] = local.split("T");
  const [y, mo, da] = d.split("-").map(Number);
  const [h, mi] = t.split(":").map(Number);
  const wall = Date.UTC(y, mo - 1, da, h, mi);
  let guess = wall;
  for (let i = 0; i < 3; i += 1) {
    const p = zoneParts(new Date(guess), tz);
    const seen = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute);
    const next = guess + (wall - seen);
    if (next === guess) break;
    guess = next;
  }
  return new Date(guess);
}

/** "22:00" from "22:00:00"; the day's closing midnight reads "24:00". */
export function clockText(hhmmss) {
  if (!hhmmss) return "";
  if (hhmmss.startsWith("23:59:59")) return "24:00";
  return hhmmss.slice(0, 5);
}

/** Today's hours as the API gives them (`open_time`, `close_time`, station-local). */
export function todayHoursText(open, close) {
  if (!open || !close) return "Closed all day";
  if (open.startsWith("00:00") && close.startsWith("23:59:59")) return "Open 24 hours";
  return `${clockText(open)} – ${clockText(close)}`;
}

/**
 * Today's exceptional changes (`exceptions_today`), said as such beside the regular hours:
 * "Closed 09:00–09:19 today", "Closed all day today", "Also open 22:00–24:00 today". Empty when none.
 */
export function todayExceptionsText(exceptions) {
  return (exceptions ?? [])
    .map(({ kind, begin, end }) => {
      if (kind === "closing" && begin.startsWith("00:00") && end.startsWith("23:59:59")) return "Closed all day today";
      const span = `${clockText(begin)}–${clockText(end)}`;
      return kind === "closing" ? `Closed ${span} today` : `Also open ${span} today`;
    })
    .join(" · ");
}

/** The regular hours of today followed by what is exceptional about today, if anything. */
export function todayText(open, close, exceptions) {
  return [todayHoursText(open, close), todayExceptionsText(exceptions)].filter(Boolean).join(" · ");
}

export function timeText(iso, tz) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("en-GB", { timeZone: tz, hour: "2-digit", minute: "2-digit", hourCycle: "h23" })
    .format(new Date(iso));
}

export function dateTimeText(iso, tz) {
  if (!iso) return "";
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: tz, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(new Date(iso));
}

/** "Wed 2 Dec, 10:30 – 11:30" with the end's date only when it differs. */
export function slotText(startIso, endIso, tz) {
  const start = dateTimeText(startIso, tz);
  if (!endIso) return start;
  const sameDay = localDate(new Date(startIso), tz) === localDate(new Date(endIso), tz);
  return `${start} – ${sameDay ? timeText(endIso, tz) : dateTimeText(endIso, tz)}`;
}

/** Relative phrase for when the next change comes: "today 22:00", "tomorrow 08:00", "Fri 08:00". */
export function whenText(iso, tz, now = new Date()) {
  if (!iso) return "";
  const at = new Date(iso);
  const today = localDate(now, tz);
  const tomorrow = localDate(new Date(now.getTime() + 86_400_000), tz);
  const day = localDate(at, tz);
  const time = timeText(iso, tz);
  if (day === today) return `today at ${time}`;
  if (day === tomorrow) return `tomorrow at ${time}`;
  return `${new Intl.DateTimeFormat("en-GB", { timeZone: tz, weekday: "long" }).format(at)} at ${time}`;
}

/** "2 h 05 min", "12 min", "under a minute". */
export function durationText(ms) {
  const minutes = Math.floor(Math.max(0, ms) / 60_000);
  if (minutes < 1) return "under a minute";
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const mins = minutes % 60;
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${pad(mins)} min`;
  return `${mins} min`;
}

/** "03:12:45" (or "2 d 03:12:45") for a board that ticks every second. */
export function countdownText(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const days = Math.floor(total / 86_400);
  const rest = `${pad(Math.floor((total % 86_400) / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return days > 0 ? `${days} d ${rest}` : rest;
}

/** "₹150.00"; with `compact`, whole amounts drop their decimals ("₹150") for prices in lists. */
export function money(amount, currency, { compact = false } = {}) {
  if (amount === null || amount === undefined || amount === "") return "";
  const value = Number(amount);
  const whole = compact && Number.isInteger(value);
  try {
    return new Intl.NumberFormat("en-IN", {
      style: "currency", currency, minimumFractionDigits: whole ? 0 : undefined, maximumFractionDigits: whole ? 0 : undefined,
    }).format(value);
  } catch {
    return `${amount} ${currency}`;
  }
}

/**
 * The one name every page gives a station's zone: its generic long name ("India Standard Time",
 * "Eastern Time"), the same in every season. Never the browser's zone, never a city's.
 */
export function zoneName(tz) {
  try {
    const name = new Intl.DateTimeFormat("en-GB", { timeZone: tz, timeZoneName: "longGeneric" })
      .formatToParts(new Date())
      .find((p) => p.type === "timeZoneName")?.value;
    if (name === "GMT+00:00" || name === "GMT") return "UTC"; // how UTC-based stations read best
    if (name) return name;
  } catch {
    // an engine without "longGeneric": fall back to the zone's own place name
  }
  return `${tz.split("/").pop().replaceAll("_", " ")} time`;
}

/** `zoneName` with the IANA id beside it where that says more: "India Standard Time (Asia/Kolkata)". */
export function zoneNameWithId(tz) {
  const name = zoneName(tz);
  return name === tz ? name : `${name} (${tz})`;
}

/** Fill each `.js-zone-name[data-timezone]` element (server-rendered pages) with `zoneName`, or
 * `zoneNameWithId` where it has `data-with-id`. */
export function nameZones(root = document) {
  for (const node of root.querySelectorAll(".js-zone-name[data-timezone]")) {
    const tz = node.dataset.timezone;
    node.textContent = "withId" in node.dataset ? zoneNameWithId(tz) : zoneName(tz);
  }
}

export function zoneLabel(tz, instant = new Date()) {
  const name = new Intl.DateTimeFormat("en-GB", { timeZone: tz, timeZoneName: "short" })
    .formatToParts(instant).find((p) => p.type === "timeZoneName")?.value;
  return name && name !== tz ? `${tz} (${name})` : tz;
}

/**
 * The server's clock as seen from here. Every message carrying `server_time` re-anchors the offset,
 * so a kiosk whose own clock is wrong still counts down to the right instant.
 */
export class ServerClock {
  constructor() {
    this.offset = 0;
  }
  sync(serverIso) {
    if (!serverIso) return;
    const server = Date.parse(serverIso);
    if (!Number.isNaN(server)) this.offset = server - Date.now();
  }
  now() {
    return new Date(Date.now() + this.offset);
  }
}
