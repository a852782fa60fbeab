// Pieces the operator console pages share: the station picker, filters kept in the address bar,
// and the "41–60 of 230" line under a paged list.
import { get } from "./api.js";
import { el } from "./ui.js";

/**
 * Fill a station <select> (after its "All stations" option) with every station, inactive ones
 * too, and return each station's time zone by id, so times show as the station's own.
 */
export async function fillStations(select, selected = null) {
  try {
    const data = await get("/api/stations?limit=200&include_inactive=true");
    const items = (Array.isArray(data) ? data : data.items ?? []).sort((a, b) => a.name.localeCompare(b.name));
    select.append(...items.map((s) => el("option", { value: String(s.id), text: s.status === "ACTIVE" ? s.name : `${s.name} (${s.status.toLowerCase()})` })));
    if (selected && items.some((s) => String(s.id) === selected)) select.value = selected;
    return new Map(items.map((s) => [s.id, s.timezone]));
  } catch {
    return new Map(); // the list still works for all stations, with times in UTC
  }
}

/** The form's non-empty values among `names`, as strings. */
export function readFilters(form, names) {
  const values = {};
  for (const name of names) {
    const input = form.elements.namedItem(name);
    const value = input ? String(input.value).trim() : "";
    if (value) values[name] = value;
  }
  return values;
}

/** Keep the filters in the address bar (without adding history entries) for reloads and links. */
export function writeFilters(values) {
  const search = new URLSearchParams(values).toString();
  const url = `${window.location.pathname}${search ? `?${search}` : ""}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", url);
}

/** "41–60 of 230 bookings". */
export function pageText(offset, shown, total, noun) {
  const plural = total === 1 ? noun : `${noun}s`;
  return `${offset + 1}–${offset + shown} of ${total} ${plural}`;
}

/**
 * Run `refilter` when the filter form changes: at once on change or submit, 350 ms after the last
 * keystroke in a search box. Returns the immediate version, for other controls (sort, reset).
 */
export function onFilterChange(form, refilter) {
  let typing = null;
  const now = () => {
    clearTimeout(typing); // whatever was typed is in this load already
    refilter();
  };
  form.addEventListener("change", now);
  form.addEventListener("input", (event) => {
    if (event.target.type !== "search") return;
    clearTimeout(typing);
    typing = setTimeout(refilter, 350);
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    now();
  });
  return now;
}

/** Previous/Next buttons: `move(-1)` or `move(1)` a page. */
export function onPage(previous, next, move) {
  previous.addEventListener("click", () => move(-1));
  next.addEventListener("click", () => move(1));
}
