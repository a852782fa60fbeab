// Wording shared by the station page and the kiosk board.
import { durationText, whenText } from "./time.js";

/** "Closes at 22:00 · in 3 h 05 min" / "Opens tomorrow at 08:00". */
export function nextChangeText(isOpen, nextChangeAt, tz, now) {
  if (!nextChangeAt) return isOpen ? "Open around the clock" : "No opening scheduled";
  const when = whenText(nextChangeAt, tz, now);
  const left = durationText(Date.parse(nextChangeAt) - now.getTime());
  return `${isOpen ? "Closes" : "Opens"} ${when} · in ${left}`;
}

const PAUSED = {
  MAINTENANCE: { badge: "Under maintenance", text: "Under maintenance — not taking bookings" },
  INACTIVE: { badge: "Not in service", text: "Not in service — not taking bookings" },
};

/**
 * A station that is not ACTIVE is in one state whatever its hours say: what every page shows of it
 * (badge and line), or null for an ACTIVE station. No OPEN/CLOSED, countdown or free count then.
 */
export function pausedState(stationStatus) {
  if (!stationStatus || stationStatus === "ACTIVE") return null;
  return PAUSED[stationStatus] ?? PAUSED.INACTIVE;
}

/** What the charger itself reports over OCPP, when it is linked to a charge point. */
const LIVE_STATE = {
  Faulted: { key: "faulted", label: "Faulted" },
  Unavailable: { key: "faulted", label: "Unavailable" },
  Charging: { key: "charging", label: "Charging" },
  SuspendedEV: { key: "charging", label: "Charging" },
  SuspendedEVSE: { key: "charging", label: "Charging" },
  Reserved: { key: "reserved", label: "Reserved" },
};

/** A charger's state as a driver reads it; nothing is "available" while its station is closed. */
export function chargerState(c, stationOpen = true, paused = null) {
  if (c.status === "OUT_OF_SERVICE") return { key: "out", label: "Out of service" };
  if (paused) return { key: "closed", label: "Not in use" };
  if (!stationOpen) return { key: "closed", label: "Closed" };
  if (c.online === false) return { key: "offline", label: "Offline" };
  if (c.session) return LIVE_STATE.Charging;
  if (LIVE_STATE[c.live_status]) return LIVE_STATE[c.live_status];
  if (c.available_now === false) return { key: "busy", label: "In use" };
  return { key: "free", label: "Available" };
}

/** "12.4 kWh · 11 kW" for a running charging session (what station screens may show of it). */
export function sessionText(session) {
  if (!session) return "";
  const kwh = Number(session.energy_kwh ?? 0).toFixed(1);
  return `${kwh} kWh · ${powerText(session.power_kw ?? 0)}`;
}

/** Merge an availability message (`chargers` with id/status/available_now) into what we hold. */
export function mergeChargers(current, updates) {
  const byId = new Map(updates.map((c) => [c.id, c]));
  const merged = current.map((c) => (byId.has(c.id) ? { ...c, ...byId.get(c.id) } : c));
  for (const c of updates) if (!current.some((x) => x.id === c.id)) merged.push(c);
  return merged.sort((a, b) => a.charger_number - b.charger_number);
}

export function powerText(kw) {
  if (kw === undefined || kw === null) return "";
  return `${Number(kw) % 1 === 0 ? Number(kw) : Number(kw).toFixed(1)} kW`;
}

export const METHOD_LABEL = { UPI: "UPI", CARD: "Card", WALLET: "Wallet" };
