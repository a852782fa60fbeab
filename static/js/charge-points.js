// The operator station page's "Charge points" section: add one (its key shown once), rotate its
// key, see whether it is online, and link a charger to one of its connectors.
import { get, messageOf, patch, post } from "./api.js";
import { dateTimeText } from "./time.js";
import { $, announce, busy, el, showError } from "./ui.js";

export class ChargePointsSection {
  constructor(stationId, timezone, errorBox, onLinked) {
    this.stationId = stationId;
    this.timezone = timezone;
    this.errorBox = errorBox;
    this.onLinked = onLinked;
    this.points = [];
    $("#cp-form").addEventListener("submit", (e) => this.add(e));
    $("#link-form").addEventListener("submit", (e) => this.link(e));
  }

  get path() {
    return `/api/stations/${this.stationId}/charge-points`;
  }

  async load(chargers) {
    try {
      this.points = (await get(this.path)).items;
    } catch (err) {
      showError(this.errorBox, `Couldn't load the charge points. ${messageOf(err)}`);
      return;
    }
    this.render(chargers);
  }

  /** An availability event's chargers carry their charge point's `online` and the connector's
  `live_status`: when one differs from the list shown, the list is read again, so Online/Offline
  follows the charger without a reload. */
  async follow(eventChargers, chargers) {
    const shown = new Map(this.points.flatMap((p) => p.connectors.map((c) => [c.charger_id, { online: p.online, live: c.live_status }])));
    const changed = eventChargers.some((c) => {
      const was = shown.get(c.id);
      return was && typeof c.online === "boolean" && (c.online !== was.online || (c.live_status ?? null) !== (was.live ?? null));
    });
    if (changed) await this.load(chargers);
  }

  showKey(answer, what) {
    const box = $("#cp-key");
    box.hidden = false;
    box.replaceChildren(
      el("strong", { text: `${what} Key for ${answer.identity}: ` }),
      el("code", { class: "cp-key", text: answer.auth_key }),
      el("span", { text: " — copy it now; it is not shown again." }),
    );
    announce(`Key for ${answer.identity} shown once. Copy it now.`);
  }

  render(chargers) {
    const body = $("#cp-table tbody");
    if (!this.points.length) body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, text: "No charge points yet." })));
    else body.replaceChildren(...this.points.map((p) => this.row(p)));
    $("#link-cp").replaceChildren(...this.points.map((p) => el("option", { value: p.id, text: p.identity })));
    $("#link-charger").replaceChildren(
      ...(chargers ?? []).map((c) => el("option", { value: c.id, text: `Charger ${c.charger_number} (${c.charger_type})` })),
    );
    $("#link-form").hidden = !this.points.length;
  }

  row(p) {
    const rotate = el("button", { type: "button", class: "button button--small button--ghost", text: "New key", "aria-label": `New key for ${p.identity}` });
    rotate.addEventListener("click", async () => {
      const answer = await this.guarded(rotate, () => post(`${this.path}/${p.id}/rotate-key`));
      if (answer) this.showKey(answer, "New key.");
    });
    const hardware = [p.vendor, p.model, p.firmware && `fw ${p.firmware}`].filter(Boolean).join(" · ") || "Not booted yet";
    const connectors = p.connectors.map((c) => `${c.connector_id} → charger ${c.charger_number}${c.live_status ? ` (${c.live_status})` : ""}`).join(", ") || "None linked";
    return el(
      "tr",
      { "data-charge-point": p.identity },
      el("th", { scope: "row", "data-label": "Identity", text: p.identity }),
      el("td", { "data-label": "State" }, el("span", { class: "chip", "data-state": p.online ? "free" : "busy", text: p.online ? "Online" : "Offline" })),
      el("td", { "data-label": "Last message", text: p.last_seen_at ? dateTimeText(p.last_seen_at, this.timezone) : "Never" }),
      el("td", { "data-label": "Hardware", text: hardware }),
      el("td", { "data-label": "Connectors", text: connectors }),
      el("td", { class: "row-actions" }, rotate),
    );
  }

  async guarded(button, work) {
    try {
      return await busy(button, work, "Working…");
    } catch (err) {
      showError(this.errorBox, messageOf(err));
      return undefined;
    }
  }

  async add(event) {
    event.preventDefault();
    const input = $("#cp-identity");
    if (!input.checkValidity()) {
      showError(this.errorBox, "An identity is 1 to 48 letters, digits, dots, dashes or underscores.");
      input.focus();
      return;
    }
    const answer = await this.guarded(event.currentTarget.querySelector("button"), () => post(this.path, { identity: input.value.trim() }));
    if (!answer) return;
    input.value = "";
    this.showKey(answer, "Charge point added.");
    await this.onLinked();
  }

  async link(event) {
    event.preventDefault();
    const chargerId = Number($("#link-charger").value);
    const body = { charge_point_id: Number($("#link-cp").value), connector_id: Number($("#link-connector").value) };
    const done = await this.guarded(event.currentTarget.querySelector("button"), () => patch(`/api/stations/${this.stationId}/chargers/${chargerId}`, body));
    if (done === undefined) return;
    $("#cp-saved").textContent = "Linked.";
    announce("Charger linked.");
    await this.onLinked();
  }
}
