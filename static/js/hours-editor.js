// Weekly opening-hours editor: rows of weekday / opens / closes, a 24/7 switch, overnight periods.
import { clone, el } from "./ui.js";

const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
let editors = 0;

export class HoursEditor {
  constructor(container) {
    this.n = ++editors;
    this.rowCount = 0;
    this.root = clone("hours-editor-template");
    container.replaceChildren(this.root);
    this.toggle = this.root.querySelector(".js-247");
    this.toggle.id = `h${this.n}-247`;
    this.root.querySelector(".js-247-label").setAttribute("for", this.toggle.id);
    this.periods = this.root.querySelector(".js-periods");
    this.body = this.root.querySelector("tbody");
    this.toggle.addEventListener("change", () => this.sync());
    this.root.querySelector(".js-add").addEventListener("click", () => {
      const last = this.rows().at(-1);
      const weekday = last ? (Number(last.weekday) % 7) + 1 : 1;
      const row = this.addRow({ weekday, period_begin: last?.period_begin ?? "08:00", period_end: last?.period_end ?? "20:00" });
      row.querySelector("select").focus();
      this.sync();
    });
    this.root.querySelector(".js-fill").addEventListener("click", () => {
      const first = this.rows()[0] ?? { period_begin: "08:00", period_end: "20:00" };
      this.set({ twentyfourseven: false, regular_hours: DAYS.map((_, i) => ({ ...first, weekday: i + 1 })) });
    });
  }

  addRow({ weekday, period_begin, period_end }) {
    const id = `h${this.n}-r${++this.rowCount}`;
    const day = el("select", { id: `${id}-day`, class: "js-day", "aria-label": "Day" }, ...DAYS.map((d, i) => el("option", { value: i + 1, text: d })));
    day.value = String(weekday);
    const begin = el("input", { type: "time", id: `${id}-begin`, class: "js-begin", value: period_begin, required: true, "aria-label": "Opens" });
    const end = el("input", { type: "time", id: `${id}-end`, class: "js-end", value: period_end === "24:00" ? "00:00" : period_end, required: true, "aria-label": "Closes" });
    const note = el("span", { class: "overnight", text: "" });
    const remove = el("button", { type: "button", class: "button button--ghost button--small", text: "Remove" });
    const row = el("tr", {}, el("td", {}, day), el("td", {}, begin), el("td", {}, end, note), el("td", {}, remove));
    const mark = () => {
      note.textContent = end.value && begin.value && end.value <= begin.value ? (end.value === begin.value ? "24 h" : "next day") : "";
    };
    begin.addEventListener("input", mark);
    end.addEventListener("input", mark);
    remove.addEventListener("click", () => {
      row.remove();
      this.sync();
    });
    remove.setAttribute("aria-label", "Remove this period");
    mark();
    this.body.append(row);
    return row;
  }

  sync() {
    this.periods.hidden = this.toggle.checked;
    this.root.querySelector(".js-empty").hidden = this.body.children.length > 0;
  }

  set(hours) {
    this.toggle.checked = Boolean(hours?.twentyfourseven);
    this.body.replaceChildren();
    for (const p of hours?.regular_hours ?? []) this.addRow(p);
    this.sync();
  }

  rows() {
    return Array.from(this.body.querySelectorAll("tr"), (tr) => ({
      weekday: Number(tr.querySelector(".js-day").value),
      period_begin: tr.querySelector(".js-begin").value,
      period_end: tr.querySelector(".js-end").value,
    }));
  }

  /** The hours as the operator API takes them; regular rows are kept even while 24/7 is on. */
  value() {
    return { twentyfourseven: this.toggle.checked, regular_hours: this.toggle.checked ? [] : this.rows() };
  }

  /** The control of the `index`th weekly period (as `value()` lists them) that `field` names. */
  inputFor(index, field) {
    const row = this.body.querySelectorAll("tr")[Number(index)];
    const cls = { weekday: ".js-day", period_begin: ".js-begin", period_end: ".js-end" }[field];
    return row && cls ? row.querySelector(cls) : null;
  }

  firstInvalid() {
    return Array.from(this.body.querySelectorAll("input")).find((i) => !i.value) ?? null;
  }
}
