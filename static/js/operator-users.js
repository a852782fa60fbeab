// Operator users: find accounts by email or username, role and state. Admins change roles and
// deactivate or reactivate accounts; operators only look. Nobody gets controls on their own row,
// since the API refuses to let anyone lock themselves out anyway.
import { get, messageOf, patch } from "./api.js";
import { askToConfirm } from "./confirm.js";
import { onFilterChange, onPage, pageText, readFilters, writeFilters } from "./console.js";
import { $, announce, busy, el, setState, showError } from "./ui.js";

const PAGE = 20;
const FILTERS = ["q", "role", "is_active"];
const ROLES = [
  ["driver", "Driver"],
  ["operator", "Operator"],
  ["admin", "Admin"],
];
const ROLE_LABEL = Object.fromEntries(ROLES);

const main = $("#main");
const me = Number(main.dataset.userId);
const isAdmin = main.dataset.role === "admin";
const form = $("#us-filters");
const table = $("#us-table");
const body = table.querySelector("tbody");
const stateBox = $("#us-state");
const count = $("#us-count");
const pager = $("#us-pager");
const errorBox = $("#us-error");
let offset = 0;
let request = null;
let applied = null; // the filters of the list on screen (or loading)

const joined = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short", year: "numeric" });

/** What a role change gives or takes away, asked before it is made. */
function roleQuestion(u, wanted) {
  const what = {
    driver: "They lose the operator console and can only book and pay for themselves.",
    operator: "They can change every station, its hours and chargers, and see every booking.",
    admin: "They can also change other people's roles and deactivate accounts.",
  }[wanted];
  return `Make ${u.email} ${ROLE_LABEL[wanted].toLowerCase()} instead of ${ROLE_LABEL[u.role].toLowerCase()}? ${what ?? ""}`.trim();
}

function roleControl(u) {
  const id = `us-role-${u.id}`;
  const select = el("select", { id, class: "select--small", "aria-label": `Role of ${u.email}` }, ...ROLES.map(([value, label]) => el("option", { value, text: label, selected: value === u.role })));
  select.addEventListener("change", async () => {
    const wanted = select.value;
    showError(errorBox, "");
    select.disabled = true;
    const go = await askToConfirm(select, roleQuestion(u, wanted), { yes: `Make ${ROLE_LABEL[wanted].toLowerCase()}`, no: "Keep as is", danger: false });
    if (!go) {
      select.value = u.role;
      select.disabled = false;
      select.focus();
      return;
    }
    try {
      await patch(`/api/users/${u.id}`, { role: wanted });
      u.role = wanted;
      announce(`${u.email} is now ${ROLE_LABEL[wanted].toLowerCase()}.`);
    } catch (err) {
      select.value = u.role;
      showError(errorBox, `Couldn't change the role of ${u.email}. ${messageOf(err)}`);
    } finally {
      select.disabled = false;
    }
  });
  return select;
}

/** The Deactivate (or Reactivate) button, and for Deactivate the confirmation row under the user's. */
function activeControl(u, columns) {
  if (!u.is_active) {
    const reactivate = el("button", { type: "button", class: "button button--small", text: "Reactivate", "aria-label": `Reactivate ${u.email}` });
    reactivate.addEventListener("click", () => setActive(u, true, reactivate));
    return [reactivate, null];
  }
  const start = el("button", { type: "button", class: "button button--danger-ghost button--small", text: "Deactivate", "aria-label": `Deactivate ${u.email}` });
  const qid = `us-confirm-${u.id}`;
  const question = el("p", {
    class: "confirm__question",
    id: qid,
    tabIndex: -1,
    text: `Deactivate ${u.email}? They are signed out everywhere at once, their unpaid holds are released, and they cannot sign in until an admin reactivates the account.`,
  });
  const yes = el("button", { type: "button", class: "button button--danger button--small", text: "Deactivate and sign out" });
  const no = el("button", { type: "button", class: "button button--ghost button--small", text: "Keep active" });
  const confirm = el("div", { class: "confirm", role: "group", "aria-labelledby": qid }, question, el("div", { class: "actions" }, yes, no));
  const confirmRow = el("tr", { class: "confirm-row", hidden: true }, el("td", { colSpan: columns }, confirm));
  start.addEventListener("click", () => {
    start.hidden = true;
    confirmRow.hidden = false;
    question.focus();
  });
  no.addEventListener("click", () => {
    confirmRow.hidden = true;
    start.hidden = false;
    start.focus();
  });
  yes.addEventListener("click", () => setActive(u, false, yes));
  return [start, confirmRow];
}

async function setActive(u, active, button) {
  showError(errorBox, "");
  try {
    await busy(button, () => patch(`/api/users/${u.id}`, { is_active: active }), active ? "Reactivating…" : "Deactivating…");
    announce(active ? `${u.email} can sign in again.` : `${u.email} is deactivated and signed out.`);
    await load({ focusUser: u.id });
  } catch (err) {
    showError(errorBox, `Couldn't change ${u.email}. ${messageOf(err)}`);
    errorBox.focus();
  }
}

function row(u) {
  const self = u.id === me;
  const status = el("span", { class: "status-pill", "data-status": u.is_active ? "ACTIVE" : "INACTIVE", text: u.is_active ? "Active" : "Deactivated" });
  // One box for the address and the "You" tag, so on a phone the tag wraps under the address.
  const address = el("span", {}, u.email);
  if (self) address.append(" ", el("span", { class: "pill pill--you", text: "You" }));
  const email = el("th", { scope: "row", "data-label": "Email", class: "cell-email" }, address);
  const cells = [
    email,
    el("td", { "data-label": "Username", text: u.username }),
    el("td", { "data-label": "Role" }, isAdmin && !self ? roleControl(u) : ROLE_LABEL[u.role] ?? u.role),
    el("td", { "data-label": "Account" }, status),
    el("td", { "data-label": "Joined", text: joined.format(new Date(u.created_at)) }),
  ];
  if (!isAdmin) return [el("tr", { "data-user-id": u.id, "data-active": String(u.is_active) }, ...cells)];
  const actions = el("td", { class: "row-actions" });
  let confirmRow = null;
  if (self) actions.append(el("span", { class: "hint", text: "Your own account" }));
  else {
    const [button, row] = activeControl(u, cells.length + 1);
    actions.append(button);
    confirmRow = row;
  }
  return [el("tr", { "data-user-id": u.id, "data-active": String(u.is_active) }, ...cells, actions), confirmRow].filter(Boolean);
}

async function load({ focusUser = null } = {}) {
  request?.abort();
  const mine = new AbortController();
  request = mine;
  const values = readFilters(form, FILTERS);
  applied = new URLSearchParams(values).toString();
  writeFilters(values);
  if (stateBox.hidden || stateBox.dataset.state !== "loading") setState(stateBox, "loading", "Loading users…");
  try {
    const params = new URLSearchParams({ ...values, limit: PAGE, offset });
    const page = await get(`/api/users?${params}`, { signal: mine.signal });
    if (page.total > 0 && offset >= page.total) {
      offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      return load({ focusUser });
    }
    body.replaceChildren(...page.items.flatMap(row));
    count.textContent = page.total ? pageText(offset, page.items.length, page.total, "account") : "";
    pager.hidden = page.total <= PAGE;
    $("#us-prev").disabled = offset === 0;
    $("#us-next").disabled = offset + page.items.length >= page.total;
    table.hidden = !page.items.length;
    if (page.items.length) setState(stateBox, "ready");
    else setState(stateBox, "empty", "No accounts match these filters.");
    if (focusUser) body.querySelector(`tr[data-user-id="${focusUser}"] button`)?.focus();
  } catch (err) {
    if (err?.name === "AbortError") return;
    table.hidden = true;
    pager.hidden = true;
    count.textContent = "";
    setState(stateBox, "error", `Couldn't load users. ${messageOf(err)}`, { retry: () => load(), loading: "Loading users…" });
  }
}

/** Back to the first page when the filters changed (a search box also fires "change" on blur). */
function refilter() {
  if (new URLSearchParams(readFilters(form, FILTERS)).toString() === applied) return;
  offset = 0;
  load();
}

onFilterChange(form, refilter);
onPage($("#us-prev"), $("#us-next"), (step) => {
  offset = Math.max(0, offset + step * PAGE);
  load();
});

const initial = new URLSearchParams(window.location.search);
for (const name of FILTERS) {
  const input = form.elements.namedItem(name);
  if (input && initial.has(name)) input.value = initial.get(name);
}
load();
