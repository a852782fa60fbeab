// A problem's `errors` shown next to the fields they name: each message right under its input, the
// input marked invalid and described by the message, so that what to fix is read out with the field.
import { el } from "./ui.js";

const MARK = "data-field-error-for";

/** The field path without where it was sent: ["body", "hours", "regular_hours", 2, "period_end"]
 * becomes ["hours", "regular_hours", 2, "period_end"]. */
export function fieldPath(loc) {
  const parts = Array.isArray(loc) ? [...loc] : [loc];
  if (parts[0] === "body" || parts[0] === "query") parts.shift();
  return parts;
}

export function clearFieldErrors(root) {
  for (const note of root.querySelectorAll(`[${MARK}]`)) {
    const input = document.getElementById(note.getAttribute(MARK));
    if (input) {
      input.removeAttribute("aria-invalid");
      const rest = (input.getAttribute("aria-describedby") ?? "").split(" ").filter((id) => id && id !== note.id);
      if (rest.length) input.setAttribute("aria-describedby", rest.join(" "));
      else input.removeAttribute("aria-describedby");
    }
    note.remove();
  }
}

/** Put each of `errors` under the input `find(path)` returns; the inputs that got one, in order. */
export function showFieldErrors(root, errors, find) {
  clearFieldErrors(root);
  const marked = [];
  for (const error of errors ?? []) {
    const input = find(fieldPath(error.loc));
    if (!input?.id || marked.includes(input)) continue;
    const note = el("p", { class: "field-error", id: `${input.id}-error`, text: error.msg });
    note.setAttribute(MARK, input.id);
    const holder = input.closest(".field, td") ?? input.parentElement;
    holder.append(note);
    input.setAttribute("aria-invalid", "true");
    const described = (input.getAttribute("aria-describedby") ?? "").split(" ").filter(Boolean);
    input.setAttribute("aria-describedby", [...described, note.id].join(" "));
    marked.push(input);
  }
  return marked;
}
