// Sign-in and registration forms.
import { messageOf, post } from "./api.js";
import { busy, clearError, showError, showErrorAndFocus } from "./ui.js";

const form = document.getElementById("auth-form");
const errorBox = document.getElementById("auth-error");

function check(form) {
  for (const input of form.querySelectorAll("input")) {
    input.removeAttribute("aria-invalid");
  }
  for (const input of form.querySelectorAll("input")) {
    if (!input.checkValidity()) {
      input.setAttribute("aria-invalid", "true");
      const label = form.querySelector(`label[for="${input.id}"]`)?.textContent ?? input.name;
      if (input.validity.valueMissing) return [input, `${label} is required.`];
      if (input.validity.typeMismatch) return [input, `Enter a valid ${label.toLowerCase()}.`];
      if (input.validity.tooShort) return [input, `${label} must be at least ${input.minLength} characters.`];
      return [input, `Check the ${label.toLowerCase()}.`];
    }
  }
  return [null, ""];
}

if (form) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(errorBox);
    const [bad, message] = check(form);
    if (bad) {
      showError(errorBox, message);
      bad.focus();
      return;
    }
    const body = Object.fromEntries(new FormData(form).entries());
    const button = form.querySelector("button[type=submit]");
    try {
      await busy(button, () => post(form.dataset.endpoint, body), "Please wait…");
      window.location.assign(form.dataset.next || "/");
    } catch (err) {
      for (const e of err.errors ?? []) {
        const name = e.loc?.[e.loc.length - 1];
        form.querySelector(`[name="${name}"]`)?.setAttribute("aria-invalid", "true");
      }
      showErrorAndFocus(errorBox, messageOf(err));
    }
  });
}
