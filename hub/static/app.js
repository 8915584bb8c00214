// The operator console. Everything a customer wrote is put on the page with textContent
// (el() below), never as markup.
import { t, lang, setLang, CANNED } from "./i18n.js";

const state = {
  token: sessionStorage.getItem("hub.token"),
  operator: null, presence: "offline", dialogs: new Map(), offers: new Map(),
  selected: null, messages: [], lead: null, duplicates: [], queues: [], operators: [],
  supervisor: null, ws: null, retry: 0, connected: false,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.className = "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, ...(options.headers || {}) };
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const reply = await fetch(path, { ...options, headers });
  if (reply.status === 401) { signOut(); throw new Error("unauthorized"); }
  const body = reply.headers.get("Content-Type")?.includes("json") ? await reply.json() : null;
  if (!reply.ok) throw new Error(body?.error?.message || `HTTP ${reply.status}`);
  return body;
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
  else toast(t("disconnected"));
}

// -- session -------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const reply = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: form.login.value, password: form.password.value }),
  });
  if (!reply.ok) { form.querySelector(".error").textContent = t("wrongLogin"); return; }
  const body = await reply.json();
  state.token = body.token;
  sessionStorage.setItem("hub.token", body.token);
  connect();
}

function signOut() {
  if (state.token) fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${state.token}` } });
  endSession();
}

// Back to the login form: after signing out here, or when the hub ended the session.
function endSession() {
  state.token = null;
  sessionStorage.removeItem("hub.token");
  if (state.ws) { state.ws.onclose = null; state.ws.close(); }
  state.operator = null;
  render();
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/operator?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onopen = () => { state.retry = 0; state.connected = true; };
  ws.onmessage = (message) => onFrame(JSON.parse(message.data));
  ws.onclose = async (event) => {
    state.connected = false;
    if (!state.token) return;
    // 4401: the token was revoked or expired; a refused handshake (1006) may mean the same.
    const ended = event.code === 4401 || (event.code === 1006 &&
      (await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${state.token}` } })
        .then((r) => r.status === 401).catch(() => false)));
    if (ended) { endSession(); return; }
    render();
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(connect, 500 * 2 ** state.retry);
  };
}

// -- frames from the hub -----------------------------------------------------------------

function onFrame(frame) {
  switch (frame.type) {
    case "hello":
      state.operator = frame.operator;
      state.presence = frame.presence;
      state.queues = frame.queues || [];
      state.dialogs = new Map(frame.dialogs.map((d) => [d.id, d]));
      state.offers = new Map(frame.offers.map((o) => [o.dialog.id, { ...o, deadline: Date.now() + o.expires_in_s * 1000 }]));
      api("/api/v1/operators").then((body) => { state.operators = body.items; render(); }).catch(() => {});
      if (state.selected && !state.dialogs.has(state.selected.id)) state.selected = null;
      if (state.selected) openDialog(state.selected.id);
      break;
    case "presence": state.presence = frame.status; break;
    case "dialog.offered":
      state.offers.set(frame.dialog.id, { ...frame, deadline: Date.now() + frame.expires_in_s * 1000 });
      notify(frame);
      break;
    case "dialog.withdrawn": state.offers.delete(frame.dialog_id); break;
    case "dialog.assigned":
      state.offers.delete(frame.dialog.id);
      state.dialogs.set(frame.dialog.id, frame.dialog);
      if (!state.selected) openDialog(frame.dialog.id);
      break;
    case "dialog.unassigned":
    case "dialog.closed":
      state.offers.delete(frame.dialog_id);
      state.dialogs.delete(frame.dialog_id);
      if (state.selected?.id === frame.dialog_id) { state.selected = null; state.messages = []; state.lead = null; }
      break;
    case "interaction": onInteraction(frame.interaction); break;
    case "interaction.updated": {
      const index = state.messages.findIndex((m) => m.id === frame.interaction.id);
      if (index >= 0) state.messages[index] = frame.interaction;
      break;
    }
    case "supervisor.state": state.supervisor = frame; break;
    case "error": toast(frame.message); break;
    default: break;
  }
  render();
}

function onInteraction(item) {
  if (state.lead && item.lead_id === state.lead.id) {
    if (!state.messages.some((m) => m.id === item.id)) state.messages.push(item);
    if (state.selected?.id === item.dialog_id) send({ type: "read", dialog_id: item.dialog_id });
  } else {
    const dialog = state.dialogs.get(item.dialog_id);
    if (dialog && item.direction === "in") dialog.unread = (dialog.unread || 0) + 1;
  }
  const dialog = state.dialogs.get(item.dialog_id);
  if (dialog) dialog.last_text = item.text;
}

function notify(frame) {
  try {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.25);
  } catch (error) { /* no sound device */ }
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t("newOffer"), { body: frame.lead?.name || frame.dialog.channel });
  }
}

// -- actions --------------------------------------------------------------------------

async function openDialog(id) {
  const dialog = state.dialogs.get(id);
  if (!dialog) return;
  state.selected = dialog;
  dialog.unread = 0;
  send({ type: "read", dialog_id: id });
  const [history, lead, duplicates] = await Promise.all([
    api(`/api/v1/leads/${dialog.lead_id}/interactions?limit=200`),
    api(`/api/v1/leads/${dialog.lead_id}`),
    api(`/api/v1/leads/${dialog.lead_id}/duplicates`),
  ]);
  state.messages = history.items;
  state.lead = lead;
  state.duplicates = duplicates.items;
  render();
}

async function sendReply() {
  const box = document.querySelector(".composer textarea");
  const files = document.querySelector(".composer input[type=file]");
  const text = box.value.trim();
  if (!state.selected || (!text && !files.files.length)) return;
  if (files.files.length) {
    const form = new FormData();
    if (text) form.append("text", text);
    for (const file of files.files) form.append("file", file, file.name);
    try { await api(`/api/v1/dialogs/${state.selected.id}/messages`, { method: "POST", body: form }); }
    catch (error) { toast(error.message); return; }
    files.value = "";
  } else {
    send({ type: "send", dialog_id: state.selected.id, text });
  }
  box.value = "";
}

async function saveLead(event) {
  event.preventDefault();
  const form = event.target;
  const lines = (value) => value.split("\n").map((v) => v.trim()).filter(Boolean);
  try {
    state.lead = await api(`/api/v1/leads/${state.lead.id}`, {
      method: "PATCH",
      json: { name: form.name.value.trim() || null, phones: lines(form.phones.value), emails: lines(form.emails.value) },
    });
    toast(t("saved"));
  } catch (error) { toast(error.message); }
  render();
}

async function mergeLead(otherId) {
  try {
    const body = await api(`/api/v1/leads/${state.lead.id}/merge`, { method: "POST", json: { other_id: otherId } });
    state.lead = body.lead;
    await openDialog(state.selected.id);
  } catch (error) { toast(error.message); }
}

async function download(attachment) {
  const reply = await fetch(attachment.url, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!reply.ok) { toast(`HTTP ${reply.status}`); return; }
  const link = el("a", { href: URL.createObjectURL(await reply.blob()), download: attachment.name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function fillCanned(template) {
  const box = document.querySelector(".composer textarea");
  const name = state.lead?.name || "";
  box.value = template.replaceAll("{name}", name).replaceAll("{operator}", state.operator?.name || "");
  box.focus();
}

// -- rendering ------------------------------------------------------------------------

function loginView() {
  return el("form", { class: "login", onsubmit: signIn },
    el("h1", {}, t("title")),
    el("label", {}, t("login"), el("input", { name: "login", autocomplete: "username", required: true })),
    el("label", {}, t("password"), el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("button", { class: "primary", type: "submit" }, t("signIn")),
    el("p", { class: "error" }));
}

function headerView() {
  const presence = el("select", { "aria-label": t("presence"), class: "presence", onchange: (e) => send({ type: "presence", status: e.target.value }) },
    ["online", "away", "offline"].map((s) => el("option", { value: s, selected: s === state.presence }, t(s))));
  const language = el("select", { "aria-label": t("language"), onchange: (e) => { setLang(e.target.value); render(); } },
    [["en", "English"], ["ru", "Русский"]].map(([v, label]) => el("option", { value: v, selected: v === lang() }, label)));
  return el("header", {}, el("h1", {}, t("title")), el("span", { class: "me" }, state.operator.name), presence, language,
    el("button", { title: t("notifications"), onclick: () => { if ("Notification" in window) Notification.requestPermission(); } }, t("notifications")),
    el("button", { onclick: signOut }, t("signOut")));
}

function offersView() {
  if (!state.offers.size) return null;
  return el("div", { class: "offers" }, el("h2", {}, t("offers")),
    [...state.offers.values()].map((offer) => {
      const left = Math.max(0, Math.round((offer.deadline - Date.now()) / 1000));
      return el("div", { class: "offer", dataset: { dialog: offer.dialog.id } },
        el("div", {}, el("strong", {}, offer.lead?.name || "—"), " ", el("span", { class: "channel" }, offer.dialog.channel)),
        el("div", { class: "preview" }, offer.dialog.last_text || ""),
        el("div", { class: "countdown" }, `${t("expiresIn")} ${left} ${t("seconds")}`),
        el("div", { class: "actions" },
          el("button", { class: "primary accept", onclick: () => send({ type: "accept", dialog_id: offer.dialog.id }) }, t("accept")),
          el("button", { class: "decline", onclick: () => send({ type: "decline", dialog_id: offer.dialog.id }) }, t("decline"))));
    }));
}

function dialogsView() {
  const items = [...state.dialogs.values()];
  return el("div", { class: "dialogs" }, el("h2", {}, t("myDialogs")),
    items.length ? items.map((d) => el("div", {
      class: `dialog-item${state.selected?.id === d.id ? " selected" : ""}`, dataset: { dialog: d.id },
      onclick: () => openDialog(d.id),
    }, el("div", {}, el("div", {}, d.lead?.name || d.lead?.phones?.[0] || `#${d.lead_id}`), el("span", { class: "channel" }, d.channel)),
       d.unread ? el("span", { class: "badge" }, d.unread) : null)) : el("p", { class: "empty" }, t("noDialogs")));
}

function messageView(m) {
  const files = (m.attachments || []).map((a) => a.url
    ? el("div", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); download(a); } }, `📎 ${a.name}`))
    : el("div", { class: "empty" }, `📎 ${a.name}: ${a.note || a.state}`));
  const delivery = m.delivery_state
    ? el("span", { class: m.delivery_state === "failed" ? "failed" : "" }, t(`delivery_${m.delivery_state}`) + (m.delivery_error ? `: ${m.delivery_error}` : ""))
    : null;
  return el("div", { class: `message ${m.direction}`, dataset: { id: m.id } },
    el("div", { class: "text" }, m.text || ""), files,
    el("div", { class: "meta" }, el("span", { class: "channel" }, m.channel),
      el("span", {}, new Date(m.occurred_at).toLocaleString(lang())), m.author ? el("span", { class: "author" }, m.author) : null, delivery));
}

function conversationView() {
  if (!state.selected) return el("section", { class: "conversation" }, el("p", { class: "empty", style: "padding:12px" }, t("pick")));
  const dialog = state.selected;
  const targets = el("select", { class: "transfer-target" }, el("option", { value: "" }, t("transferTo")),
    state.operators.filter((o) => o.id !== state.operator.id).map((o) => el("option", { value: `op:${o.id}` }, `${o.name} (${t(o.presence)})`)),
    state.queues.map((q) => el("option", { value: `q:${q}` }, `${t("queueLabel")}: ${q}`)));
  const doTransfer = () => {
    const value = targets.value;
    if (value.startsWith("op:")) send({ type: "transfer", dialog_id: dialog.id, operator_id: Number(value.slice(3)) });
    else if (value.startsWith("q:")) send({ type: "transfer", dialog_id: dialog.id, queue: value.slice(2) });
  };
  const canned = el("select", { class: "canned", onchange: (e) => { if (e.target.value) fillCanned(e.target.value); e.target.value = ""; } },
    el("option", { value: "" }, t("canned")), CANNED[lang()].map((c) => el("option", { value: c }, c)));
  const box = el("textarea", { placeholder: t("reply"), "aria-label": t("reply"),
    onkeydown: (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); sendReply(); } } });
  const view = el("section", { class: "conversation" },
    el("div", { class: "conv-head" }, el("strong", {}, state.lead?.name || `#${dialog.lead_id}`), el("span", { class: "channel" }, dialog.channel),
      targets, el("button", { class: "transfer", onclick: doTransfer }, t("transfer")),
      el("button", { class: "danger close", onclick: () => send({ type: "close", dialog_id: dialog.id }) }, t("close"))),
    el("div", { class: "messages" }, state.messages.map(messageView)),
    el("div", { class: "composer" }, box, el("button", { class: "primary send", onclick: sendReply }, t("send")),
      el("div", { class: "tools" }, canned, el("input", { type: "file", multiple: true, "aria-label": t("attach") }))));
  requestAnimationFrame(() => { const list = view.querySelector(".messages"); list.scrollTop = list.scrollHeight; });
  return view;
}

function leadView() {
  if (!state.lead) return el("aside", { class: "right" });
  const lead = state.lead;
  return el("aside", { class: "right lead-card" }, el("h2", {}, t("lead")),
    el("form", { onsubmit: saveLead },
      el("label", {}, t("name"), el("input", { name: "name", value: lead.name || "" })),
      el("label", {}, t("phones"), el("textarea", { name: "phones" }, lead.phones.join("\n"))),
      el("label", {}, t("emails"), el("textarea", { name: "emails" }, lead.emails.join("\n"))),
      el("button", { type: "submit" }, t("save"))),
    el("h2", {}, t("identities")), lead.identities.map((i) => el("div", {}, el("span", { class: "channel" }, i.kind), " ", i.external_id)),
    el("h2", {}, t("duplicates")),
    state.duplicates.length ? state.duplicates.map((d) => el("div", { class: "dup" },
      el("div", {}, d.lead.name || `#${d.lead.id}`), el("div", { class: "empty" }, [...d.lead.phones, ...d.lead.emails].join(", ")),
      el("button", { onclick: () => mergeLead(d.lead.id) }, t("merge")))) : el("p", { class: "empty" }, t("noDuplicates")));
}

function supervisorView() {
  if (!state.supervisor || !["supervisor", "admin"].includes(state.operator.role)) return null;
  const s = state.supervisor;
  return el("div", { class: "supervisor" }, el("h2", {}, t("supervisor")),
    el("table", { class: "queues" }, el("tr", {}, el("th", {}, t("queue")), el("th", {}, t("waiting")), el("th", {}, t("oldestWait"))),
      s.queues.map((q) => el("tr", { dataset: { queue: q.name } }, el("td", {}, q.name), el("td", { class: "waiting" }, q.waiting), el("td", {}, `${Math.round(q.oldest_wait_s)} ${t("seconds")}`)))),
    el("table", { class: "operators" }, el("tr", {}, el("th", {}, t("operators")), el("th", {}, t("presence")), el("th", {}, t("load"))),
      s.operators.map((o) => el("tr", { dataset: { operator: o.id } }, el("td", {}, o.name), el("td", {}, t(o.presence)), el("td", { class: "load" }, `${o.load}/${o.max_dialogs}`)))));
}

function render() {
  const app = document.getElementById("app");
  document.title = t("title");
  if (!state.token) { app.replaceChildren(loginView()); return; }
  if (!state.operator) { app.replaceChildren(el("p", { class: "loading" }, "…")); return; }
  const focused = document.activeElement;
  const draft = document.querySelector(".composer textarea")?.value;
  const supervisor = supervisorView();
  app.replaceChildren(...[headerView(),
    state.connected ? null : el("div", { class: "banner" }, t("disconnected")),
    el("div", { class: `layout${supervisor ? " with-supervisor" : ""}` },
      el("aside", { class: "left" }, offersView(), dialogsView()), conversationView(), leadView(), supervisor)].filter(Boolean));
  const box = document.querySelector(".composer textarea");
  if (box && draft) box.value = draft;
  if (box && focused?.tagName === "TEXTAREA") box.focus();
}

setInterval(() => { if (state.offers.size) render(); }, 1000);
render();
if (state.token) connect();
