// The bell in every page header: the unread count, live over /ws/me; a toast when a notification
// arrives (in every open tab of this driver); a panel that lists them and marks them read.
import { get, messageOf, post } from "./api.js";
import { LiveChannel } from "./live.js";
import { $, announce, el, setState } from "./ui.js";

const bell = $("#bell");
const count = $("#bell-count");
const panel = $("#notice-panel");
const list = $("#notice-list");
const stateBox = $("#notice-state");
const offline = $("#notice-offline");
const toasts = $("#toasts");
const TOAST_MS = 8000;
const PAGE = 20;

function showCount(n) {
  const unread = Math.max(0, Number(n) || 0);
  count.textContent = unread > 99 ? "99+" : String(unread);
  count.hidden = unread === 0;
  bell.dataset.unread = String(unread);
  $("#bell-label").textContent = unread ? `Notifications, ${unread} unread` : "Notifications";
}

function when(iso) {
  return new Intl.DateTimeFormat("en-GB", { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

function item(n) {
  const li = el(
    "li",
    { class: "notice", "data-id": n.id, "data-read": n.read_at ? "true" : "false", "data-kind": n.kind },
    el("p", { class: "notice__title", text: n.title }),
    el("p", { class: "notice__body", text: n.body }),
    el("p", { class: "notice__when" }, el("time", { dateTime: n.created_at, text: when(n.created_at) })),
  );
  if (!n.read_at) {
    const mark = el("button", { type: "button", class: "button button--ghost button--small", text: "Mark read" });
    mark.setAttribute("aria-label", `Mark read: ${n.title}`);
    mark.addEventListener("click", () => markRead(li, n.id, mark));
    li.append(mark);
  }
  return li;
}

async function load() {
  setState(stateBox, "loading", "Loading notifications…");
  try {
    const page = await get(`/api/me/notifications?limit=${PAGE}`);
    showCount(page.unread_count);
    list.replaceChildren(...page.items.map(item));
    if (page.items.length) setState(stateBox, "ready");
    else setState(stateBox, "empty", "Nothing yet. Bookings, payments and changes to your slots show up here.");
  } catch (err) {
    setState(stateBox, "error", `Couldn't load notifications. ${messageOf(err)}`, { retry: load });
  }
}

async function markRead(li, id, button) {
  button.disabled = true;
  try {
    const answer = await post(`/api/me/notifications/${id}/read`);
    showCount(answer.unread_count);
    li.dataset.read = "true";
    button.remove();
  } catch (err) {
    button.disabled = false;
    announce(messageOf(err));
  }
}

function toggle(open) {
  panel.hidden = !open;
  bell.setAttribute("aria-expanded", String(open));
  if (open) load();
}

function toast(n) {
  if (!toasts) return;
  const box = el(
    "div",
    { class: "toast", "data-kind": n.kind },
    el("p", { class: "toast__title", text: n.title }),
    el("p", { class: "toast__body", text: n.body }),
  );
  const close = el("button", { type: "button", class: "toast__close", text: "×" });
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => box.remove());
  box.append(close);
  toasts.append(box);
  setTimeout(() => box.remove(), TOAST_MS);
}

function onMessage(msg) {
  if (msg.type === "snapshot") showCount(msg.unread_count);
  else if (msg.type === "notification") {
    showCount(msg.unread_count);
    toast(msg);
    // Pages that show bookings refresh what the notification is about.
    document.dispatchEvent(new CustomEvent("chargeslot:notification", { detail: msg }));
    if (!panel.hidden) {
      list.prepend(item(msg));
      setState(stateBox, "ready");
    }
  }
}

async function poll() {
  const page = await get("/api/me/notifications?limit=1");
  showCount(page.unread_count);
}

if (bell) {
  bell.addEventListener("click", () => toggle(panel.hidden));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      toggle(false);
      bell.focus();
    }
  });
  $("#notice-read-all").addEventListener("click", async (event) => {
    try {
      await post("/api/me/notifications/read-all");
      showCount(0);
      await load();
    } catch (err) {
      announce(messageOf(err));
    }
    event.target.focus();
  });
  const channel = new LiveChannel({
    path: "/ws/me",
    onMessage,
    poll,
    onGap: () => poll().catch(() => {}),
    onState: (state) => {
      bell.dataset.state = state;
      offline.hidden = state === "connected";
    },
  });
  channel.start();
}
