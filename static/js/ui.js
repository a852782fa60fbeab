// Small DOM helpers shared by the pages.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

let announceTimer = null;

/** Say something to screen-reader users through the page's polite live region. */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  clearTimeout(announceTimer);
  region.textContent = "";
  // A fresh text node after a tick makes screen readers read repeated messages too.
  announceTimer = setTimeout(() => {
    region.textContent = text;
  }, 50);
}

export function showError(el, message) {
  if (!el) return;
  el.textContent = message;
  el.hidden = !message;
}

/** Show an error and move focus to it, so keyboard and screen-reader users land on the message. */
export function showErrorAndFocus(el, message) {
  showError(el, message);
  if (el && message) el.focus();
}

export function clearError(el) {
  showError(el, "");
}

/** OPEN / CLOSED, or the one state of a station that is not taking bookings (`pausedState`). */
export function setBadge(el, isOpen, paused = null) {
  if (!el) return;
  el.dataset.open = paused ? "paused" : isOpen ? "true" : "false";
  el.textContent = paused ? paused.badge : isOpen ? "Open" : "Closed";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role" || key === "for") {
      node.setAttribute(key, value === true ? "" : String(value));
    } else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

export function clone(templateId) {
  return document.getElementById(templateId).content.firstElementChild.cloneNode(true);
}

/** Disable a button while `work` runs, so a double click never sends twice. */
export async function busy(button, work, busyText) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  if (busyText) button.textContent = busyText;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (busyText) button.textContent = label;
  }
}

/**
 * Show a list's loading, empty or error state (or hide it: "ready"). An error with `retry` offers a
 * Retry button that shows the loading state (with the `loading` message) and runs it. Focus
 * follows the content: whoever pressed Retry stays in the state box while it loads, lands on the
 * new Retry button if it fails again, and on the element named by the box's `data-focus-after`
 * once the content is there.
 */
export function setState(container, state, message = "", { retry, loading } = {}) {
  if (!container) return;
  const hadFocus = container.contains(document.activeElement);
  container.dataset.state = state;
  container.hidden = state === "ready";
  if (state === "loading") {
    container.replaceChildren(el("p", { class: "state__loading" }, el("span", { class: "spinner", "aria-hidden": "true" }), ` ${message || "Loading…"}`));
  } else if (state === "empty") {
    container.replaceChildren(el("p", { class: "state__empty", text: message }));
  } else if (state === "error") {
    container.replaceChildren(el("p", { class: "state__error", role: "alert", text: message }));
    if (retry) container.append(retryButton(() => {
      setState(container, "loading", loading);
      retry();
    }));
  }
  if (!hadFocus) return;
  if (state === "ready") document.getElementById(container.dataset.focusAfter)?.focus();
  else (container.querySelector("button") ?? container).focus();
}

function retryButton(retry) {
  const button = el("button", { type: "button", class: "button state__retry", text: "Retry" });
  button.addEventListener("click", () => {
    if (document.activeElement === button) button.closest("[tabindex]")?.focus(); // it is about to go
    retry();
  });
  return button;
}
