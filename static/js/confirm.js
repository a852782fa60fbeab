// Asking before a change that cannot be taken back: a question with Confirm and Cancel, shown in
// place next to what asked it, read out when it appears. Nothing is sent until Confirm is pressed.
import { el } from "./ui.js";

let asked = 0;

/** Show `question` after `anchor`; resolves true on Confirm, false on Cancel (or Escape). */
export function askToConfirm(anchor, question, { yes = "Confirm", no = "Cancel", danger = true } = {}) {
  const id = `confirm-${++asked}`;
  const text = el("p", { class: "confirm__question", id, tabIndex: -1, text: question });
  const confirm = el("button", { type: "button", class: `button button--small ${danger ? "button--danger" : "button--primary"}`, text: yes });
  const cancel = el("button", { type: "button", class: "button button--ghost button--small", text: no });
  const panel = el("div", { class: "confirm", role: "group", "aria-labelledby": id, "data-confirm": "" }, text, el("div", { class: "actions" }, confirm, cancel));
  anchor.after(panel);
  text.focus();
  return new Promise((resolve) => {
    const answer = (value) => {
      panel.remove();
      resolve(value);
    };
    confirm.addEventListener("click", () => answer(true));
    cancel.addEventListener("click", () => answer(false));
    panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") answer(false);
    });
  });
}
