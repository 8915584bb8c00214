// The operator console. Views are Preact components (htm templates, no build step) reading
// one store (store.js); a live update re-renders through a keyed diff, so what an operator
// is typing, selecting or scrolling is never rebuilt. Customer text is always a text node:
// templates never inject markup.
import { html, render, useEffect, useLayoutEffect, useRef, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { customerLang, errorText, lang, setLang, t } from "./i18n.js";
import { AdminPage, loadAdmin } from "./admin.js";
import { ReportsPage } from "./reports.js";
import { loadDraft, saveDraft, store } from "./store.js";

const PAGE = 50;
const KIND_MARK = { telegram: "TG", vk: "VK", viber: "VB", form: "WEB", email: "@", pbx: "☎", call: "☎", note: "✎" };

// -- talking to the hub -------------------------------------------------------------------

class HubFailure extends Error {
  constructor(code, message) { super(errorText(code, message)); this.code = code; }
}

async function api(path, options = {}) {
  const { token } = store.get();
  const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
  const init = { ...options, headers };
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(options.json); }
  const reply = await fetch(path, init);
  if (reply.status === 401) { endSession(); throw new HubFailure("unauthorized"); }
  const body = reply.headers.get("Content-Type")?.includes("json") ? await reply.json() : null;
  if (!reply.ok) throw new HubFailure(body?.error?.code || "internal", body?.error?.message || `HTTP ${reply.status}`);
  return body;
}

let socket = null;
let retry = 0;

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
  else toast(errorText("disconnected"));
}

// A frame that is worth nothing late (typing): dropped when disconnected, no toast.
function sendQuietly(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(frame));
}

function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.className = "show";
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.className = ""; }, 4000);
}

// -- session ------------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = event.target;
  const reply = await fetch("/api/v1/auth/login", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: form.login.value, password: form.password.value }),
  });
  if (!reply.ok) {
    const body = await reply.json().catch(() => null);
    form.querySelector(".error").textContent = reply.status === 401 ? t("wrongLogin") : errorText(body?.error?.code, body?.error?.message);
    return;
  }
  const body = await reply.json();
  sessionStorage.setItem("hub.token", body.token);
  store.set({ token: body.token, checking: false });
  connect();
}

function signOut() {
  const { token } = store.get();
  if (token) fetch("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Bearer ${token}` } }).catch(() => {});
  endSession();
}

// Back to the login form: signed out here, or the hub ended the session (4401, a stale token).
function endSession() {
  sessionStorage.removeItem("hub.token");
  if (socket) { socket.onclose = null; socket.close(); socket = null; }
  store.set({ token: null, checking: false, operator: null, dialogs: new Map(), offers: new Map(), calls: new Map(), selectedId: null, messages: [], lead: null });
}

// A token kept from an earlier visit may be revoked or expired: ask before connecting.
async function resume() {
  const { token } = store.get();
  if (!token) return;
  try {
    const reply = await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
    if (reply.status === 401 || reply.status === 403) { endSession(); return; }
  } catch (error) { /* the hub is unreachable: keep the token, the socket retries */ }
  store.set({ checking: false });
  connect();
}

function connect() {
  const { token } = store.get();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  // The desk's "missed today" counts from midnight where the supervisor is.
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/operator?token=${encodeURIComponent(token)}&tz=${encodeURIComponent(zone)}`);
  socket = ws;
  ws.onopen = () => { retry = 0; store.set({ connected: true }); };
  ws.onmessage = (message) => onFrame(JSON.parse(message.data));
  ws.onclose = async (event) => {
    store.set({ connected: false });
    if (!store.get().token || socket !== ws) return;
    const ended = event.code === 4401 || (event.code === 1006 &&
      (await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${store.get().token}` } })
        .then((r) => r.status === 401).catch(() => false)));
    if (ended) { endSession(); return; }
    // 1012: the node is restarting; another one (behind the balancer) takes us at once. The
    // jitter keeps a whole room of consoles from arriving in the same instant.
    const restarting = event.code === 1012;
    retry = restarting ? 0 : Math.min(retry + 1, 6);
    const wait = restarting ? 200 + Math.random() * 800 : 500 * 2 ** retry;
    setTimeout(() => { if (store.get().token && socket === ws) connect(); }, wait);
  };
}

// -- frames from the hub ------------------------------------------------------------------

function withDialog(dialogs, id, change) {
  const dialog = dialogs.get(id);
  if (!dialog) return dialogs;
  const next = new Map(dialogs);
  next.set(id, { ...dialog, ...change(dialog) });
  return next;
}

function onFrame(frame) {
  const state = store.get();
  switch (frame.type) {
    case "hello": {
      const offers = new Map(frame.offers.map((o) => [o.dialog.id, { ...o, deadline: Date.now() + o.expires_in_s * 1000 }]));
      const dialogs = new Map(frame.dialogs.map((d) => [d.id, d]));
      const selectedId = dialogs.has(state.selectedId) ? state.selectedId : null;
      store.set({ operator: frame.operator, presence: frame.presence, queues: frame.queues || [], writeFirst: frame.write_first || [], dialogs, offers, selectedId });
      api("/api/v1/operators").then((body) => store.set({ operators: body.items })).catch(() => {});
      api("/api/v1/canned-responses").then((body) => store.set({ canned: body.items })).catch(() => {});
      if (frame.operator.role === "admin" && store.get().page === "admin") loadAdmin(store, api, toast, store.get().adminTab || "channels");
      // A reconnect resyncs the open conversation from the database.
      if (selectedId) openDialog(selectedId, { keepView: true });
      else if (state.selectedId) store.set({ messages: [], lead: null, duplicates: [] });
      break;
    }
    case "presence": store.set({ presence: frame.status }); break;
    case "operator.presence":
    case "operators.presence": {
      // One change, or several folded into one frame (many consoles connecting at once).
      const changes = new Map((frame.changes || [frame]).map((c) => [c.operator_id, c.presence]));
      const operators = state.operators.map((o) => (changes.has(o.id) ? { ...o, presence: changes.get(o.id) } : o));
      const mine = state.operator && changes.get(state.operator.id);
      store.set(mine ? { operators, presence: mine } : { operators });
      break;
    }
    case "dialog.offered": {
      const offers = new Map(state.offers);
      offers.set(frame.dialog.id, { ...frame, deadline: Date.now() + frame.expires_in_s * 1000 });
      store.set({ offers });
      notify(frame);
      break;
    }
    case "dialog.withdrawn": {
      const offers = new Map(state.offers);
      offers.delete(frame.dialog_id);
      store.set({ offers });
      break;
    }
    case "dialog.assigned": {
      const offers = new Map(state.offers);
      offers.delete(frame.dialog.id);
      const dialogs = new Map(state.dialogs);
      dialogs.set(frame.dialog.id, frame.dialog);
      store.set({ offers, dialogs });
      if (takingOver === frame.dialog.id) {
        // Taken over from the desk: the supervisor answers it in the console now.
        takingOver = null;
        closeMonitor();
        store.set({ page: "console" });
        openDialog(frame.dialog.id);
      } else if (!state.selectedId) openDialog(frame.dialog.id);
      const note = frame.dialog.handover?.comment;
      if (frame.transferred && note) toast(`${t("transferredToYou")}: ${note}`);
      break;
    }
    case "dialog.unassigned":
    case "dialog.closed": {
      const offers = new Map(state.offers);
      offers.delete(frame.dialog_id);
      const dialogs = new Map(state.dialogs);
      dialogs.delete(frame.dialog_id);
      const closing = state.selectedId === frame.dialog_id;
      if (frame.type === "dialog.closed" && state.statusFilter === "closed") loadClosed();
      store.set(closing ? { offers, dialogs, selectedId: null, messages: [], lead: null, duplicates: [], view: "list" } : { offers, dialogs });
      break;
    }
    case "interaction": onInteraction(frame.interaction); break;
    case "interaction.updated": {
      const messages = state.messages.map((m) => (m.id === frame.interaction.id ? frame.interaction : m));
      store.set({ messages });
      break;
    }
    case "lead.merged":
    case "lead.unmerged":
    case "lead.updated": {
      const ids = [frame.lead_id, frame.merged_id, frame.restored_id];
      if (state.lead && ids.includes(state.lead.id) && state.selectedId) openDialog(state.selectedId, { keepView: true });
      break;
    }
    case "call.ringing": {
      const calls = new Map(state.calls);
      calls.set(frame.call.id, { call: frame.call, lead: frame.lead, recent: frame.recent || [] });
      store.set({ calls });
      ring();
      break;
    }
    case "call.answered":
    case "call.ended": {
      const pop = state.calls.get(frame.call.id);
      if (!pop) break;
      const calls = new Map(state.calls);
      calls.set(frame.call.id, { ...pop, call: frame.call });
      store.set({ calls });
      // A finished call's card stays a minute for a last look, then goes by itself.
      if (frame.type === "call.ended") setTimeout(() => dismissCall(frame.call.id), 60000);
      break;
    }
    case "supervisor.state": store.set({ supervisor: { ...frame, receivedAt: Date.now() } }); break;
    case "dialog.changed": if (state.monitorId === frame.dialog_id) refreshTimeline(); break;
    case "error": toast(errorText(frame.code, frame.message)); break;
    default: break;
  }
}

function onInteraction(item) {
  const state = store.get();
  const open = state.lead && item.lead_id === state.lead.id;
  let { messages } = state;
  if (open && !messages.some((m) => m.id === item.id)) messages = [...messages, item].sort((a, b) => a.id - b.id);
  const selected = state.selectedId === item.dialog_id;
  const human = item.direction === "out" && item.author !== "auto-reply" && item.kind !== "note";
  // When it reached the hub (as the server counts activity and waiting), not the provider's
  // own timestamp of the message.
  const now = new Date().toISOString();
  const dialogs = withDialog(state.dialogs, item.dialog_id, (d) => ({
    last_at: now,
    ...(item.direction === "in" ? {
      last_text: item.text ?? d.last_text,
      unread: selected ? 0 : (d.unread || 0) + 1,
      waiting_since: d.waiting_since || now,
    } : {}),
    ...(human ? { waiting_since: null } : {}),
  }));
  store.set({ messages, dialogs });
  if (selected) send({ type: "read", dialog_id: item.dialog_id });
  // A customer's new message in one's own dialog while the tab is hidden: a tone and, once
  // allowed, a desktop notification (the tab title counts the unread meanwhile).
  if (item.direction === "in" && document.hidden && state.dialogs.has(item.dialog_id)) {
    chime(state.dialogs.get(item.dialog_id), item);
  }
  // A shared contact or a form may have taught the lead a phone or an email.
  if (open && item.direction === "in") refreshLead(state.lead.id);
}

async function refreshLead(leadId) {
  try {
    const lead = await api(`/api/v1/leads/${leadId}`);
    if (store.get().lead?.id === leadId) store.set({ lead });
  } catch (error) { /* the next open reloads it */ }
}

// Tones told apart by ear: a new dialog, a new message, a ringing phone (two).
function tones(frequency, length, starts = [0]) {
  try {
    const audio = new AudioContext();
    for (const at of starts) {
      const tone = audio.createOscillator();
      tone.frequency.value = frequency;
      tone.connect(audio.destination);
      tone.start(audio.currentTime + at);
      tone.stop(audio.currentTime + at + length);
    }
  } catch (error) { /* no sound device */ }
}

function notify(frame) {
  tones(880, 0.25);
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(t("newOffer"), { body: frame.lead?.name || frame.dialog.channel });
  }
}

// A new message: a short low tone; the notification names the customer and opens the dialog.
function chime(dialog, item) {
  tones(520, 0.15);
  if ("Notification" in window && Notification.permission === "granted") {
    const note = new Notification(leadName(dialog), { body: (item.text || "").slice(0, 140), tag: `dialog-${dialog.id}` });
    note.onclick = () => { window.focus(); openDialog(dialog.id); };
  }
}

// A ringing phone: two short tones.
function ring() {
  tones(660, 0.2, [0, 0.35]);
}

// -- actions ------------------------------------------------------------------------------

function dismissCall(id) {
  const calls = new Map(store.get().calls);
  if (calls.delete(id)) store.set({ calls });
}

// The caller's lead from the screen pop: the dialog if it is the operator's already (an
// answered call puts it in their list), else the card the pop brought, to read.
function openCallLead(pop) {
  const state = store.get();
  const own = [...state.dialogs.values()].find((d) => d.lead_id === pop.lead.id && d.channel_kind === "pbx")
    || [...state.dialogs.values()].find((d) => d.lead_id === pop.lead.id);
  if (own) { openDialog(own.id); return; }
  store.set({ selectedId: null, lead: pop.lead, messages: [...pop.recent].reverse(), olderCursor: null, duplicates: [], view: "lead" });
}

// -- the supervisors' desk -------------------------------------------------------------------

let takingOver = null;

function showPage(page) {
  sessionStorage.setItem("hub.page", page);
  if (page !== "desk") closeMonitor();
  store.set({ page });
  if (page === "admin") loadAdmin(store, api, toast, store.get().adminTab || "channels");
}

// A dialog from the desk, read-only: its lead's whole conversation with the hand-overs, and
// its news live while it is open (the socket watches it).
async function openMonitor(id) {
  const dialog = store.get().supervisor?.dialogs.find((d) => d.id === id);
  if (!dialog) return;
  const ticket = ++opening;
  store.set({ monitorId: id, selectedId: null, messages: [], lead: null, timeline: [], olderCursor: null });
  send({ type: "watch", dialog_id: id });
  const loaded = await leadState(dialog.lead_id, { duplicates: false });
  if (loaded && ticket === opening) store.set(loaded);
}

function closeMonitor() {
  if (store.get().monitorId === null) return;
  sendQuietly({ type: "watch", dialog_id: null });
  store.set({ monitorId: null, messages: [], lead: null, timeline: [], olderCursor: null });
}

function takeOver(id) {
  takingOver = id;
  send({ type: "take_over", dialog_id: id });
}

async function refreshTimeline() {
  const { lead } = store.get();
  if (!lead) return;
  try {
    const timeline = await api(`/api/v1/leads/${lead.id}/timeline`);
    if (store.get().lead?.id === lead.id) store.set({ timeline: timeline.items });
  } catch (error) { /* the next open reloads it */ }
}

// A transfer (the operator's) or a reassignment (the desk's), with the note for the receiver.
function handOver(dialogId, target, comment) {
  const frame = { type: "transfer", dialog_id: dialogId };
  if (comment.trim()) frame.comment = comment.trim();
  if (target.startsWith("op:")) send({ ...frame, operator_id: Number(target.slice(3)) });
  else if (target.startsWith("q:")) send({ ...frame, queue: target.slice(2) });
  else return false;
  return true;
}

// -- search -------------------------------------------------------------------------------

let searchTimer = null;
let searchTicket = 0;

// Asked as the operator types (a pause of a quarter second), at two characters or more.
function searchFor(q) {
  clearTimeout(searchTimer);
  const query = q.trim();
  if (query.length < 2) { store.set({ search: query ? { q: query, results: null } : null }); return; }
  store.set({ search: { q: query, results: store.get().search?.results || null } });
  searchTimer = setTimeout(async () => {
    const ticket = ++searchTicket;
    try {
      const results = await api(`/api/v1/search?q=${encodeURIComponent(query)}`);
      if (ticket === searchTicket) store.set({ search: { q: query, results } });
    } catch (error) { toast(error.message); }
  }, 250);
}

function clearSearch() {
  clearTimeout(searchTimer);
  searchTicket++;
  store.set({ search: null });
}

// A found lead: its open dialog if the operator has one, else its history to read.
async function openLead(leadId) {
  const own = [...store.get().dialogs.values()].find((d) => d.lead_id === leadId);
  if (own) { openDialog(own.id); return; }
  const ticket = ++opening;
  const loaded = await leadState(leadId);
  if (loaded && ticket === opening) store.set({ ...loaded, selectedId: null, view: "conversation" });
}

// Whatever opened last wins: an answer for a lead opened before is dropped.
let opening = 0;

// A lead's conversation as the views show it: the newest page of its history (older pages
// as the operator scrolls), the lead, its hand-overs and (not for a monitor) duplicates.
async function leadState(leadId, { duplicates = true } = {}) {
  try {
    const [history, lead, timeline, found] = await Promise.all([
      api(`/api/v1/leads/${leadId}/interactions?order=desc&limit=${PAGE}`),
      api(`/api/v1/leads/${leadId}`),
      api(`/api/v1/leads/${leadId}/timeline`),
      duplicates ? api(`/api/v1/leads/${leadId}/duplicates`) : null,
    ]);
    return {
      messages: history.items.reverse(), olderCursor: history.next_cursor, lead, timeline: timeline.items,
      ...(found ? { duplicates: found.items } : {}),
    };
  } catch (error) { toast(error.message); return null; }
}

async function openDialog(id, { keepView = false } = {}) {
  const dialog = store.get().dialogs.get(id);
  if (!dialog) return;
  const ticket = ++opening;
  const dialogs = withDialog(store.get().dialogs, id, () => ({ unread: 0 }));
  store.set(keepView ? { selectedId: id, dialogs } : { selectedId: id, dialogs, view: "conversation" });
  send({ type: "read", dialog_id: id });
  const loaded = await leadState(dialog.lead_id);
  if (loaded && ticket === opening) store.set(loaded);
}

async function loadOlder() {
  const state = store.get();
  if (!state.olderCursor || state.loadingOlder || !state.lead) return;
  store.set({ loadingOlder: true });
  try {
    const page = await api(`/api/v1/leads/${state.lead.id}/interactions?order=desc&limit=${PAGE}&before=${state.olderCursor}`);
    const known = new Set(store.get().messages.map((m) => m.id));
    const older = page.items.filter((m) => !known.has(m.id)).reverse();
    store.set({ messages: [...older, ...store.get().messages], olderCursor: page.next_cursor });
  } catch (error) { toast(error.message); }
  store.set({ loadingOlder: false });
}

async function sendReply(dialogId, box, files) {
  const text = box.value.trim();
  if (!text && !files.files.length) return;
  const { operator } = store.get();
  if (files.files.length) {
    const form = new FormData();
    if (text) form.append("text", text);
    for (const file of files.files) form.append("file", file, file.name);
    try { await api(`/api/v1/dialogs/${dialogId}/messages`, { method: "POST", body: form }); }
    catch (error) { toast(error.message); return; }
    files.value = "";
  } else {
    send({ type: "send", dialog_id: dialogId, text });
  }
  box.value = "";
  saveDraft(operator.id, dialogId, "");
}

// An internal note: kept in the conversation for colleagues, never sent to the customer.
async function addNote(dialogId, box) {
  const text = box.value.trim();
  if (!text) return;
  try {
    const note = await api(`/api/v1/dialogs/${dialogId}/notes`, { method: "POST", json: { text } });
    onInteraction(note);
  } catch (error) { toast(error.message); return; }
  box.value = "";
  saveDraft(store.get().operator.id, dialogId, "");
}

async function saveLead(event) {
  event.preventDefault();
  const form = event.target;
  const lines = (value) => value.split("\n").map((v) => v.trim()).filter(Boolean);
  const { lead } = store.get();
  try {
    const saved = await api(`/api/v1/leads/${lead.id}`, {
      method: "PATCH",
      json: { name: form.name.value.trim() || null, phones: lines(form.phones.value), emails: lines(form.emails.value) },
    });
    store.set({ lead: saved });
    toast(t("saved"));
  } catch (error) { toast(error.message); }
}

// A lead's phones as the API reads them back, extensions included.
function phoneLines(lead) {
  return lead.phones.map((p) => (lead.phone_extensions?.[p] ? `${p} ext. ${lead.phone_extensions[p]}` : p));
}

async function patchLead(changes) {
  const { lead } = store.get();
  try {
    store.set({ lead: await api(`/api/v1/leads/${lead.id}`, { method: "PATCH", json: changes }) });
  } catch (error) { toast(error.message); }
}

// The form keeps what the operator typed across live updates; a name chosen here is put in.
async function applyName(name) {
  await patchLead({ name });
  const input = document.querySelector(".lead-card input[name=name]");
  if (input && store.get().lead?.name === name) input.value = name;
}

// A phone seen in an email signature: the operator decides whether it is the customer's.
const acceptPhone = (phone) => patchLead({ phones: [...phoneLines(store.get().lead), phone] });
const dismissPhone = (phone) => patchLead({ phone_suggestions: store.get().lead.phone_suggestions.filter((p) => p !== phone) });

async function mergeLead(otherId) {
  const { lead, selectedId } = store.get();
  try {
    await api(`/api/v1/leads/${lead.id}/merge`, { method: "POST", json: { other_id: otherId } });
    await openDialog(selectedId, { keepView: true });
  } catch (error) { toast(error.message); }
}

async function download(attachment) {
  const reply = await fetch(attachment.url, { headers: { Authorization: `Bearer ${store.get().token}` } });
  if (!reply.ok) { toast(`HTTP ${reply.status}`); return; }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await reply.blob());
  link.download = attachment.name;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// The operator's recently closed dialogs, newest first (the list's "closed" filter).
async function loadClosed() {
  try {
    const body = await api("/api/v1/dialogs?status=closed&order=desc&limit=50");
    store.set({ closedDialogs: body.items });
  } catch (error) { toast(error.message); }
}

function sortedDialogs(state) {
  const items = [...state.dialogs.values()].filter((d) => (!state.channelFilter || d.channel === state.channelFilter)
    && (state.statusFilter !== "waiting" || d.waiting_since));
  const time = (value) => (value ? Date.parse(value) : 0);
  if (state.sort === "waiting") {
    return items.sort((a, b) => (time(a.waiting_since) || Infinity) - (time(b.waiting_since) || Infinity) || b.id - a.id);
  }
  return items.sort((a, b) => time(b.last_at || b.created_at) - time(a.last_at || a.created_at) || b.id - a.id);
}

// -- small pieces -------------------------------------------------------------------------

function since(value, now) {
  if (!value) return "";
  const seconds = Math.max(0, Math.round((now - Date.parse(value)) / 1000));
  if (seconds < 60) return t("justNow");
  if (seconds < 3600) return `${Math.floor(seconds / 60)} ${t("minutes")}`;
  return `${Math.floor(seconds / 3600)} ${t("hours")} ${Math.floor((seconds % 3600) / 60)} ${t("minutes")}`;
}

// A wait as a clock (4:05, 1:02:03): a supervisor reads seconds.
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  return s < 3600 ? `${Math.floor(s / 60)}:${two(s % 60)}` : `${Math.floor(s / 3600)}:${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

function operatorName(state, id) {
  if (id === state.operator.id) return state.operator.name;
  return state.supervisor?.operators.find((o) => o.id === id)?.name || state.operators.find((o) => o.id === id)?.name || `#${id}`;
}

function useNow(every = 1000) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => { const timer = setInterval(() => setNow(Date.now()), every); return () => clearInterval(timer); }, [every]);
  return now;
}

function Kind({ kind, name }) {
  const label = t(`kind_${kind}`);
  return html`<span class="channel" title=${label}><span class=${`kind kind-${kind || "other"}`} aria-hidden="true">${KIND_MARK[kind] || "•"}</span> ${name ? `${label} · ${name}` : label}</span>`;
}

function leadName(dialog) {
  return dialog.lead?.name || dialog.lead?.phones?.[0] || dialog.lead?.emails?.[0] || `#${dialog.lead_id}`;
}

// -- views --------------------------------------------------------------------------------

function Login() {
  return html`<main class="login-page"><form class="login" onSubmit=${signIn}>
    <h1>${t("title")}</h1>
    <label>${t("login")}<input name="login" autocomplete="username" required /></label>
    <label>${t("password")}<input name="password" type="password" autocomplete="current-password" required /></label>
    <button class="primary" type="submit">${t("signIn")}</button>
    <p class="error" role="alert"></p>
  </form></main>`;
}

function Header({ state }) {
  const changeLang = (event) => { setLang(event.target.value); store.set({}); };
  return html`<header>
    <h1>${t("title")}</h1>
    <span class="me" title=${t("me")}>${state.operator.name}</span>
    <select aria-label=${t("presence")} class="presence" value=${state.presence}
      onChange=${(e) => send({ type: "presence", status: e.target.value })}>
      ${["online", "away", "offline"].map((s) => html`<option key=${s} value=${s}>${t(s)}</option>`)}
    </select>
    <select aria-label=${t("language")} value=${lang()} onChange=${changeLang}>
      <option value="en">English</option><option value="ru">Русский</option>
    </select>
    ${["supervisor", "admin"].includes(state.operator.role) ? html`<button class="page-switch" aria-pressed=${state.page === "desk" ? "true" : "false"}
      onClick=${() => showPage(state.page === "desk" ? "console" : "desk")}>${state.page === "desk" ? t("console") : t("desk")}</button>` : null}
    ${["supervisor", "admin"].includes(state.operator.role) ? html`<button class="reports-switch" aria-pressed=${state.page === "reports" ? "true" : "false"}
      onClick=${() => showPage(state.page === "reports" ? "console" : "reports")}>${state.page === "reports" ? t("console") : t("reports")}</button>` : null}
    ${state.operator.role === "admin" ? html`<button class="admin-switch" aria-pressed=${state.page === "admin" ? "true" : "false"}
      onClick=${() => showPage(state.page === "admin" ? "console" : "admin")}>${state.page === "admin" ? t("console") : t("admin")}</button>` : null}
    <button title=${t("notifications")} onClick=${() => { if ("Notification" in window) Notification.requestPermission(); }}>${t("notifications")}</button>
    <button class="help-button" aria-label=${t("help")} title=${t("help")} onClick=${() => store.set({ help: !store.get().help })}>?</button>
    <button onClick=${signOut}>${t("signOut")}</button>
  </header>`;
}

function OfferCard({ offer, now }) {
  const dialog = offer.dialog;
  const left = Math.max(0, Math.round((offer.deadline - now) / 1000));
  const waited = dialog.waiting_since || dialog.created_at;
  return html`<article class="offer" data-dialog=${dialog.id} aria-label=${t("newOffer")}>
    <div class="offer-head"><strong>${offer.lead?.name || dialog.lead?.name || "—"}</strong> <${Kind} kind=${dialog.channel_kind} name=${dialog.channel} /></div>
    ${dialog.callback ? html`<div class="callback-task">☎ ${t("callBack")} ${dialog.callback.phone}</div>` : null}
    <div class="preview">${dialog.last_text || ""}</div>
    <${HandoverNote} dialog=${dialog} />
    <div class="offer-meta"><span class="waited">${t("waited")} ${since(waited, now)}</span>
      <span class="countdown">${t("expiresIn")} ${left} ${t("seconds")}</span></div>
    <div class="actions">
      <button class="primary accept" onClick=${() => send({ type: "accept", dialog_id: dialog.id })}>${t("accept")}</button>
      <button class="decline" onClick=${() => send({ type: "decline", dialog_id: dialog.id })}>${t("decline")}</button>
    </div>
  </article>`;
}

// The note the last hand-over left for its receiver: with the offer, and atop the dialog.
function HandoverNote({ dialog }) {
  const note = dialog.handover?.comment;
  if (!note) return null;
  const from = dialog.handover.by_operator_id;
  const state = store.get();
  return html`<div class="handover-note"><strong>${t("handoverFrom")} ${from ? operatorName(state, from) : "CRM"}:</strong> ${note}</div>`;
}

// Only the offers re-render each second (their countdown), nothing else on the page.
function Offers({ offers }) {
  const now = useNow(1000);
  if (!offers.size) return null;
  return html`<section class="offers" aria-label=${t("offers")}><h2>${t("offers")}</h2>
    ${[...offers.values()].map((offer) => html`<${OfferCard} key=${offer.dialog.id} offer=${offer} now=${now} />`)}</section>`;
}

function SearchBox({ search }) {
  return html`<form class="search" role="search" onSubmit=${(e) => { e.preventDefault(); searchFor(e.target.q.value); }}>
    <input type="search" name="q" aria-label=${t("search")} placeholder=${t("searchPlaceholder")} maxlength="200"
      autocomplete="off" value=${search?.q || ""} onInput=${(e) => searchFor(e.target.value)}
      onKeyDown=${(e) => { if (e.key === "Escape") { clearSearch(); e.target.blur(); } }} />
    ${search ? html`<button type="button" class="search-clear" aria-label=${t("searchClear")} title=${t("searchClear")} onClick=${clearSearch}>×</button>` : null}
  </form>`;
}

// The words searched for, marked in a found message: split as text, never parsed as HTML.
function Marked({ text, query }) {
  const words = query.toLowerCase().match(/[\p{L}\p{N}_]+/gu) || [];
  if (!words.length) return text;
  const pattern = new RegExp(`(${words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|")})`, "giu");
  return text.split(pattern).map((part, i) => (i % 2 ? html`<mark key=${i}>${part}</mark>` : part));
}

function SearchResults({ search }) {
  const { results } = search;
  if (!results) return html`<p class="empty" role="status">${search.q.length < 2 ? t("searchShort") : t("loadingHistory")}</p>`;
  const when = (value) => new Date(value).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  return html`<section class="search-results" aria-label=${t("searchResults")}>
    <h2>${t("searchLeads")}</h2>
    ${results.leads.length ? html`<ul class="found-leads">${results.leads.map((lead) => html`<li key=${lead.id}>
      <button class="found-lead" data-lead=${lead.id} onClick=${() => openLead(lead.id)}>
        <span class="dialog-name">${lead.name || lead.phones[0] || lead.emails[0] || `#${lead.id}`}</span>
        <span class="dialog-last">${[...lead.phones, ...lead.emails].join(" · ")}</span>
      </button></li>`)}</ul>` : html`<p class="empty">${t("searchNothing")}</p>`}
    ${results.kind === "phone" ? null : html`<h2>${t("searchMessages")}</h2>
    ${results.messages.length ? html`<ul class="found-messages">${results.messages.map((m) => html`<li key=${m.id}>
      <button class="found-message" data-lead=${m.lead_id} onClick=${() => openLead(m.lead_id)}>
        <span class="found-head"><span class="dialog-name">${m.lead_name || `#${m.lead_id}`}</span>
          <time datetime=${m.occurred_at}>${when(m.occurred_at)}</time></span>
        <${Kind} kind=${m.kind} />
        <span class="found-text">${m.subject ? html`<strong>${m.subject} </strong>` : null}<${Marked} text=${m.snippet} query=${results.query} /></span>
      </button></li>`)}</ul>` : html`<p class="empty">${t("searchNothing")}</p>`}`}
  </section>`;
}

function DialogList({ state }) {
  const now = useNow(30000);
  const items = sortedDialogs(state);
  const changeSort = (event) => { localStorage.setItem("hub.sort", event.target.value); store.set({ sort: event.target.value }); };
  const changeChannel = (event) => { localStorage.setItem("hub.channel", event.target.value); store.set({ channelFilter: event.target.value }); };
  const changeStatus = (event) => { localStorage.setItem("hub.status", event.target.value); store.set({ statusFilter: event.target.value, closedDialogs: null }); };
  const closed = state.statusFilter === "closed";
  useEffect(() => { if (closed) loadClosed(); }, [closed]);
  const closedItems = (state.closedDialogs || []).filter((d) => !state.channelFilter || d.channel === state.channelFilter);
  const channels = [...new Set([...state.dialogs.values()].map((d) => d.channel))].sort();
  if (state.channelFilter && !channels.includes(state.channelFilter)) channels.push(state.channelFilter);
  return html`<nav class="dialogs" aria-label=${t("myDialogs")}>
    <h2>${t("myDialogs")}</h2>
    <div class="list-controls">
      <label class="sort">${t("sortBy")} <select value=${state.sort} onChange=${changeSort}>
        <option value="activity">${t("sortActivity")}</option><option value="waiting">${t("sortWaiting")}</option>
      </select></label>
      <label class="list-filter">${t("channel")} <select class="channel-filter" value=${state.channelFilter} onChange=${changeChannel}>
        <option value="">${t("allChannels")}</option>
        ${channels.map((c) => html`<option key=${c} value=${c}>${c}</option>`)}
      </select></label>
      <label class="list-filter">${t("status")} <select class="status-filter" value=${state.statusFilter} onChange=${changeStatus}>
        <option value="open">${t("statusOpen")}</option><option value="waiting">${t("statusWaiting")}</option>
        <option value="closed">${t("statusClosed")}</option>
      </select></label>
    </div>
    ${closed ? (state.closedDialogs === null ? html`<p class="empty" role="status">${t("loadingHistory")}</p>`
      : closedItems.length ? html`<ul class="dialog-items closed-items">${closedItems.map((d) => html`<li key=${d.id}>
        <button class="dialog-item" data-dialog=${d.id} onClick=${() => openLead(d.lead_id)}>
          <span class="dialog-main"><span class="dialog-name">${leadName(d)}</span><${Kind} kind=${d.channel_kind} /></span>
          <span class="dialog-side"><time datetime=${d.closed_at}>${new Date(d.closed_at).toLocaleString(lang(), { dateStyle: "short", timeStyle: "short" })}</time></span>
        </button></li>`)}</ul>` : html`<p class="empty">${t("noDialogs")}</p>`)
    : items.length ? html`<ul class="dialog-items">${items.map((d) => html`<li key=${d.id}>
      <button class=${`dialog-item${state.selectedId === d.id ? " selected" : ""}`} data-dialog=${d.id}
        aria-current=${state.selectedId === d.id ? "true" : undefined} onClick=${() => openDialog(d.id)}>
        <span class="dialog-main"><span class="dialog-name">${leadName(d)}</span>
          <${Kind} kind=${d.channel_kind} />
          ${d.callback ? html`<span class="callback-task">☎ ${t("callBack")}</span>` : null}
          <span class="dialog-last">${d.last_text || ""}</span></span>
        <span class="dialog-side"><time>${since(d.last_at || d.created_at, now)}</time>
          ${d.waiting_since ? html`<span class="dialog-waiting">${t("waited")} ${since(d.waiting_since, now)}</span>` : null}
          ${d.unread ? html`<span class="badge">${d.unread}</span>` : null}</span>
      </button></li>`)}</ul>` : html`<p class="empty">${t("noDialogs")}</p>`}
  </nav>`;
}

function callLine(call) {
  const minutes = Math.floor((call.duration_s || 0) / 60);
  const seconds = String((call.duration_s || 0) % 60).padStart(2, "0");
  const length = call.status === "answered" && call.duration_s ? ` · ${minutes}:${seconds}` : "";
  return `${t(call.direction === "out" ? "callOut" : "callIn")} · ${t(`call_${call.status}`)}${length}`;
}

function CallPop({ pop }) {
  const { call, lead } = pop;
  const contacts = lead ? [...lead.phones, ...lead.emails].join(", ") : "";
  return html`<article class=${`call-pop call-${call.status}`} data-call=${call.id} aria-live="assertive"
      aria-label=${t("incomingCall")}>
    <div class="call-head"><span class="call-icon" aria-hidden="true">☎</span>
      <strong class="caller">${lead?.name || call.from}</strong>
      <span class="call-state">${callLine(call)}</span></div>
    <div class="call-numbers">${call.from} → ${call.to}${call.extension ? ` · ${t("extension")} ${call.extension}` : ""}</div>
    ${lead ? html`<div class="call-contacts">${contacts}</div>` : html`<div class="empty">${t("unknownCaller")}</div>`}
    ${pop.recent.length ? html`<ol class="call-history" aria-label=${t("recentHistory")}>
      ${pop.recent.map((m) => html`<li key=${m.id}><${Kind} kind=${m.kind} />
        <span class="history-text">${m.call ? callLine(m.call) : (m.subject || m.text || "")}</span>
        <time>${new Date(m.occurred_at).toLocaleDateString(lang())}</time></li>`)}</ol>`
      : lead ? html`<p class="empty">${t("firstContact")}</p>` : null}
    <div class="actions">
      ${lead ? html`<button class="primary open-lead" onClick=${() => openCallLead(pop)}>${t("openLead")}</button>` : null}
      <button class="dismiss-call" onClick=${() => dismissCall(call.id)}>${t("dismiss")}</button>
    </div>
  </article>`;
}

function CallPops({ calls }) {
  if (!calls.size) return null;
  return html`<section class="call-pops" aria-label=${t("calls")}>
    ${[...calls.values()].map((pop) => html`<${CallPop} key=${pop.call.id} pop=${pop} />`)}</section>`;
}

// A file of the hub's, fetched with the operator's token (an <img> or <audio> cannot send
// it), as a blob URL released when the view goes; null until it is loaded.
function useBlobUrl(url) {
  const [src, setSrc] = useState(null);
  useEffect(() => {
    let objectUrl = null;
    let live = true;
    fetch(url, { headers: { Authorization: `Bearer ${store.get().token}` } })
      .then((reply) => (reply.ok ? reply.blob() : null))
      .then((blob) => { if (blob && live) { objectUrl = URL.createObjectURL(blob); setSrc(objectUrl); } })
      .catch(() => {});
    return () => { live = false; if (objectUrl) URL.revokeObjectURL(objectUrl); };
  }, [url]);
  return src;
}

// A call's recording, playable in place.
function Recording({ url }) {
  const src = useBlobUrl(url);
  return src ? html`<audio class="recording" controls preload="metadata" src=${src}></audio>` : html`<span class="empty">${t("loadingHistory")}</span>`;
}

function CallSummary({ call }) {
  return html`<div class=${`call-summary call-${call.status}`}>
    <span aria-hidden="true">☎</span> ${callLine(call)}
    <div class="call-numbers">${call.from} → ${call.to}${call.extension ? ` · ${t("extension")} ${call.extension}` : ""}</div>
    ${call.recording_url ? html`<${Recording} url=${call.recording_url} />`
      : call.recording_note ? html`<div class="empty">${t("recording")}: ${call.recording_note}</div>` : null}
  </div>`;
}

// Pictures shown in the conversation (an email's inline images, a messenger's photos);
// other files are links. Raster types only, and not huge ones.
const SHOWN_INLINE = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
const SHOWN_INLINE_MAX = 5 * 1024 * 1024;
const PLAYED_INLINE_MAX = 20 * 1024 * 1024;

function Picture({ a }) {
  const src = useBlobUrl(a.url);
  return html`<a href="#" class="picture" title=${a.name} onClick=${(e) => { e.preventDefault(); download(a); }}>
    ${src ? html`<img src=${src} alt=${a.name} />` : html`📎 ${a.name}`}</a>`;
}

// A long message (a pasted contract, a forwarded thread) shows its beginning until opened.
const LONG_TEXT = 1200;
function LongText({ text }) {
  const [open, setOpen] = useState(false);
  const long = text.length > LONG_TEXT || text.split("\n").length > 20;
  if (!long) return html`<div class="text">${text}</div>`;
  return html`<div class=${`text long${open ? " open" : ""}`}>${text}</div>
    <button class="more" aria-expanded=${open ? "true" : "false"} onClick=${() => setOpen(!open)}>${open ? t("showLess") : t("showMore")}</button>`;
}

function fileSize(bytes) {
  if (!bytes && bytes !== 0) return "";
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

// A file that is neither shown nor played: a card with its name, type and size.
function FileCard({ a }) {
  const type = (a.content_type || "").split("/").pop().split(";")[0].toUpperCase();
  return html`<a href="#" class="file-card" onClick=${(e) => { e.preventDefault(); download(a); }}>
    <span class="file-icon" aria-hidden="true">${type.slice(0, 4) || "FILE"}</span>
    <span class="file-name">${a.name}</span>
    <span class="file-meta">${[type, fileSize(a.size)].filter(Boolean).join(" · ")}</span></a>`;
}

function Message({ m }) {
  // A call's recording plays in its summary; a voice message plays in place; pictures are
  // shown; other files are cards.
  const shown = m.call ? (m.attachments || []).filter((a) => !a.content_type.startsWith("audio/")) : (m.attachments || []);
  const files = shown.map((a, index) => (a.url
    ? (SHOWN_INLINE.has(a.content_type) && a.size <= SHOWN_INLINE_MAX
      ? html`<div key=${index}><${Picture} a=${a} /></div>`
      : a.content_type.startsWith("audio/") && a.size <= PLAYED_INLINE_MAX
        ? html`<div key=${index} class="voice"><${Recording} url=${a.url} /><${FileCard} a=${a} /></div>`
        : html`<div key=${index}><${FileCard} a=${a} /></div>`)
    : html`<div key=${index} class="empty">📎 ${a.name}: ${a.note || a.state}</div>`));
  const delivery = m.delivery_state
    ? html`<span class=${m.delivery_state === "failed" ? "failed" : ""}>${t(`delivery_${m.delivery_state}`)}${m.delivery_error ? `: ${m.delivery_error}` : ""}</span>`
    : null;
  const fields = Object.entries(m.fields || {});
  return html`<div class=${`message ${m.direction}${m.kind === "note" ? " note" : ""}`} data-id=${m.id}>
    ${m.kind === "note" ? html`<div class="note-label">✎ ${t("noteLabel")}</div>` : null}
    ${m.subject ? html`<div class="subject">${m.subject}</div>` : null}
    ${m.call ? html`<${CallSummary} call=${m.call} />` : html`<${LongText} text=${m.text || ""} />`}${files}
    ${fields.length ? html`<dl class="fields">${fields.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${typeof v === "string" ? v : JSON.stringify(v)}</dd></div>`)}</dl>` : null}
    <div class="meta"><${Kind} kind=${m.kind} name=${m.channel} />
      <span>${new Date(m.occurred_at).toLocaleString(lang())}</span>
      ${m.author ? html`<span class="author">${m.author}</span>` : null}${delivery}
      ${m.edited_at ? html`<span class="edited" title=${new Date(m.edited_at).toLocaleString(lang())}>${t("edited")}</span>` : null}</div>
  </div>`;
}

// Who had the dialog when: the log's hand-overs among the messages, from the oldest message
// shown on (older ones come with older messages).
function withHandOvers(state) {
  const since = state.olderCursor && state.messages.length ? Date.parse(state.messages[0].occurred_at) : -Infinity;
  const shown = (state.timeline || [])
    .filter((e, i, all) => Date.parse(e.occurred_at) >= since && !(e.type === "dialog.queued" && e.data.reason !== "offer_expired")
      // A transfer's assignment says again what the transfer line said.
      && !(e.type === "dialog.assigned" && e.data.via === "transfer" && all[i - 1]?.type === "dialog.transferred"
        && all[i - 1].data.to_operator_id === e.operator_id))
    .map((e) => ({ ...e, handOver: true }));
  const time = (x) => Date.parse(x.handOver ? x.occurred_at : (x.created_at || x.occurred_at));
  return [...state.messages, ...shown].sort((a, b) => time(a) - time(b));
}

function handOverText(e, state) {
  const name = (id) => operatorName(state, id);
  const actor = e.actor.startsWith("operator:") ? name(Number(e.actor.slice(9))) : e.actor.startsWith("api:") ? e.actor.slice(4) : null;
  switch (e.type) {
    case "dialog.created": return t("ho_created");
    case "dialog.offered": return `${t("ho_offered")} ${(e.data.operators || []).map(name).join(", ")}`;
    case "dialog.assigned": return e.data.via === "accept" ? `${name(e.operator_id)} ${t("ho_accepted")}` : `${t("ho_assigned")} ${name(e.operator_id)}${e.data.comment ? `: “${e.data.comment}”` : ""}`;
    case "dialog.transferred": {
      const comment = e.data.comment ? `: “${e.data.comment}”` : "";
      if (e.data.to_operator_id && e.actor === `operator:${e.data.to_operator_id}`) return `${name(e.data.to_operator_id)} ${t("ho_took_over")}`;
      return `${t("ho_transferred")} ${e.data.to_operator_id ? name(e.data.to_operator_id) : `${t("queueLabel")} ${e.queue || "default"}`}${actor ? ` (${actor})` : ""}${comment}`;
    }
    case "dialog.queued": return t("ho_expired");
    case "dialog.closed": return `${t("ho_closed")}${actor ? ` (${actor})` : ""}`;
    case "dialog.reopened": return t("ho_reopened");
    default: return e.type;
  }
}

function Messages({ state }) {
  const list = useRef(null);
  const stick = useRef(true);      // the operator is at the bottom: follow new messages
  const before = useRef(null);     // scroll geometry before older messages were put on top
  const count = state.messages.length;
  const first = state.messages[0]?.id;
  useLayoutEffect(() => {
    const node = list.current;
    if (!node) return;
    if (before.current) {
      node.scrollTop = node.scrollHeight - before.current.height + before.current.top;
      before.current = null;
    } else if (stick.current) {
      node.scrollTop = node.scrollHeight;
    }
  }, [count, first, state.selectedId, state.monitorId]);
  useEffect(() => { stick.current = true; }, [state.selectedId, state.monitorId]);
  const onScroll = () => {
    const node = list.current;
    stick.current = node.scrollHeight - node.scrollTop - node.clientHeight < 40;
    if (node.scrollTop < 60 && state.olderCursor && !state.loadingOlder) {
      before.current = { height: node.scrollHeight, top: node.scrollTop };
      loadOlder();
    }
  };
  return html`<div class="messages" ref=${list} onScroll=${onScroll} tabindex="0" aria-label=${t("viewConversation")}>
    ${state.olderCursor ? html`<p class="history-note">${state.loadingOlder ? t("olderLoading") : ""}</p>` : html`<p class="history-note">${count ? t("noMore") : ""}</p>`}
    ${withHandOvers(state).map((m, i, all) => {
      // A care cycle begins again: a divider, like a new dialog's.
      if (m.handOver && m.type === "dialog.reopened") {
        return html`<div key=${`e-${m.id}`} class="divider reopened" role="separator" aria-label=${t("ho_reopened")}>
          <span>${t("ho_reopened")} · ${new Date(m.occurred_at).toLocaleString(lang(), { dateStyle: "short", timeStyle: "short" })}</span></div>`;
      }
      if (m.handOver) return html`<p key=${`e-${m.id}`} class="hand-over">${handOverText(m, state)} · <time datetime=${m.occurred_at}>${new Date(m.occurred_at).toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit" })}</time></p>`;
      const previous = all.slice(0, i).reverse().find((x) => !x.handOver);
      // Each dialog of the lead (a care cycle, another channel) begins under a divider.
      const divider = previous && previous.dialog_id !== m.dialog_id
        ? html`<div key=${`d-${m.id}`} class="divider" role="separator" aria-label=${t("newDialog")}>
            <span>${t("newDialog")} · ${m.channel} · ${new Date(m.occurred_at).toLocaleDateString(lang())}</span></div>`
        : null;
      return [divider, html`<${Message} key=${m.id} m=${m} />`];
    })}
  </div>`;
}

function Composer({ state, dialogId }) {
  const box = useRef(null);
  const files = useRef(null);
  const [picking, setPicking] = useState(null);  // what follows "/" at the start of the reply
  const operatorId = state.operator.id;
  const inbound = state.messages.filter((m) => m.direction === "in").map((m) => m.text).reverse();
  const language = customerLang(inbound);
  const canned = (state.canned || []).filter((c) => c.language === language);
  const use = (template) => {
    const text = template.replaceAll("{name}", state.lead?.name || "").replaceAll("{operator}", state.operator?.name || "");
    box.current.value = text;
    saveDraft(operatorId, dialogId, text);
    setPicking(null);
    box.current.focus();
  };
  const fill = (event) => {
    const template = event.target.value;
    event.target.value = "";
    if (template) use(template);
  };
  const matches = picking === null ? [] : (state.canned || [])
    .filter((c) => `${c.title} ${c.text}`.toLowerCase().includes(picking))
    .sort((a, b) => (a.language === language ? 0 : 1) - (b.language === language ? 0 : 1))
    .slice(0, 8);
  const typed = useRef(0);
  const onInput = (event) => {
    const value = event.target.value;
    saveDraft(operatorId, dialogId, value);
    // The customer sees "typing…" where their messenger shows it (the hub limits it too).
    if (value.trim() && !value.startsWith("/") && Date.now() - typed.current > 3000) {
      typed.current = Date.now();
      sendQuietly({ type: "typing", dialog_id: dialogId });
    }
    setPicking(value.startsWith("/") && !value.includes("\n") ? value.slice(1).toLowerCase() : null);
  };
  const onKey = (event) => {
    if (picking !== null && matches.length && event.key === "Enter" && !event.ctrlKey && !event.metaKey) {
      event.preventDefault(); use(matches[0].text); return;
    }
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); sendReply(dialogId, box.current, files.current); }
    if (event.key === "Escape") { if (picking !== null) setPicking(null); else box.current.blur(); }
  };
  return html`<div class="composer">
    <textarea key=${`draft-${dialogId}`} ref=${box} placeholder=${t("reply")} aria-label=${t("reply")}
      defaultValue=${loadDraft(operatorId, dialogId)} onInput=${onInput} onKeyDown=${onKey}></textarea>
    <div class="send-buttons">
      <button class="primary send" onClick=${() => sendReply(dialogId, box.current, files.current)}>${t("send")}</button>
      <button class="add-note" title=${t("addNoteHint")} onClick=${() => addNote(dialogId, box.current)}>${t("addNote")}</button>
    </div>
    ${picking !== null ? html`<ul class="canned-picker" aria-label=${t("canned")}>
      ${matches.length ? matches.map((c) => html`<li key=${c.id}><button type="button" class="canned-choice" onClick=${() => use(c.text)}>
        <strong>${c.title}</strong> <span>${c.text}</span></button></li>`) : html`<li class="empty">${t("searchNothing")}</li>`}
    </ul>` : null}
    <div class="tools">
      <select class="canned" aria-label=${t("canned")} onChange=${fill}>
        <option value="">${t("canned")}</option>${canned.map((c) => html`<option key=${c.id} value=${c.text}>${c.title}</option>`)}
      </select>
      <input ref=${files} type="file" multiple aria-label=${t("attach")} />
    </div>
  </div>`;
}

// A lead opened from search or a call without a dialog of one's own: its whole history to
// read, and a first message on a channel it wrote on (the API picks its latest dialog there)
// or, to a lead with an email address, on an email channel (a new letter, with a subject).
function LeadHistory({ state }) {
  const box = useRef(null);
  const channel = useRef(null);
  const lead = state.lead;
  const subject = useRef(null);
  const wrote = new Set(state.messages.filter((m) => m.direction === "in" && m.kind !== "call").map((m) => m.channel));
  const channels = [...new Set([...wrote, ...(lead.emails.length ? state.writeFirst || [] : [])])];
  const [picked, setPicked] = useState(null);
  const chosen = picked && channels.includes(picked) ? picked : channels[0];
  const firstLetter = chosen && !wrote.has(chosen);
  const write = async () => {
    const text = box.current.value.trim();
    if (!text) return;
    const json = chosen ? { text, channel: chosen } : { text };
    if (firstLetter && subject.current?.value.trim()) json.subject = subject.current.value.trim();
    try {
      onInteraction(await api(`/api/v1/leads/${lead.id}/messages`, { method: "POST", json }));
      box.current.value = "";
    } catch (error) { toast(error.message); }
  };
  return html`<section class="conversation lead-history" aria-label=${t("viewConversation")}>
    <div class="conv-head"><strong>${lead.name || `#${lead.id}`}</strong> <span class="empty">${t("historyOnly")}</span></div>
    <${Messages} state=${state} />
    ${channels.length ? html`<div class="composer write-first">
      <textarea ref=${box} placeholder=${t("writeFirst")} aria-label=${t("writeFirst")}
        onKeyDown=${(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); write(); } }}></textarea>
      <div class="send-buttons"><button class="primary send" onClick=${write}>${t("send")}</button></div>
      <div class="tools"><label class="list-filter">${t("channel")} <select ref=${channel} class="write-channel"
          value=${chosen} onChange=${(e) => setPicked(e.target.value)}>
        ${channels.map((c) => html`<option key=${c} value=${c}>${c}${wrote.has(c) ? "" : ` (${t("newLetter")})`}</option>`)}
      </select></label>
      ${firstLetter ? html`<input ref=${subject} class="write-subject" maxlength="200" placeholder=${t("subject")} aria-label=${t("subject")} />
        <span class="empty">${t("to")} ${lead.emails[0]}</span>` : null}</div>
    </div>` : null}
  </section>`;
}

// Whom to hand a dialog to (an operator not offline, or a queue) and a note for them: the
// operator's transfer and the desk's reassignment.
function HandOver({ state, dialogId, exclude, label = "transfer", placeholder = "transferTo" }) {
  const target = useRef(null);
  const comment = useRef(null);
  const targets = state.operators.filter((o) => o.id !== exclude && o.presence !== "offline");
  const go = () => {
    if (handOver(dialogId, target.current.value, comment.current.value)) { comment.current.value = ""; target.current.value = ""; }
  };
  return html`<span class="hand-over-controls">
    <select class="transfer-target" ref=${target} aria-label=${t(placeholder)}>
      <option value="">${t(placeholder)}</option>
      ${targets.map((o) => html`<option key=${`op${o.id}`} value=${`op:${o.id}`}>${o.name} (${t(o.presence)})</option>`)}
      ${state.queues.map((q) => html`<option key=${`q${q}`} value=${`q:${q}`}>${t("queueLabel")}: ${q}</option>`)}
    </select>
    <input class="handover-comment" ref=${comment} maxlength="1000" placeholder=${t("handoverComment")} aria-label=${t("handoverComment")}
      onKeyDown=${(e) => { if (e.key === "Enter") { e.preventDefault(); go(); } }} />
    <button class=${label} onClick=${go}>${t(label)}</button>
  </span>`;
}

function Conversation({ state }) {
  const dialog = state.dialogs.get(state.selectedId);
  if (!dialog && state.lead) return html`<${LeadHistory} state=${state} />`;
  if (!dialog) return html`<section class="conversation" aria-label=${t("viewConversation")}><p class="empty pick">${t("pick")}</p></section>`;
  return html`<section class="conversation" aria-label=${t("viewConversation")}>
    <div class="conv-head">
      <strong>${state.lead?.name || leadName(dialog)}</strong> <${Kind} kind=${dialog.channel_kind} name=${dialog.channel} />
      <${HandOver} key=${`transfer-${dialog.id}`} state=${state} dialogId=${dialog.id} exclude=${state.operator.id} />
      <button class="danger close" onClick=${() => send({ type: "close", dialog_id: dialog.id })}>${t("close")}</button>
    </div>
    <${HandoverNote} dialog=${dialog} />
    <${Messages} state=${state} />
    ${dialog.channel_kind === "pbx"
      ? html`<p class="phone-only">☎ ${t("phoneOnly")} ${state.lead?.phones?.[0] || ""}</p>`
      : html`<${Composer} key=${dialog.id} state=${state} dialogId=${dialog.id} />`}
  </section>`;
}

// Where the lead came from: the first touch's channel, and for a form the page, its utm
// parameters and the page before it (shown as text: they are the visitor's).
function LeadSource({ source }) {
  if (!source) return null;
  const how = source.kind === "api" ? t("sourceApi") : source.kind === "import" ? t("sourceImport") : t(`kind_${source.kind}`);
  const rows = [
    [t("sourceHow"), `${how}${source.channel ? ` · ${source.channel}` : ""}`],
    ...(source.at ? [[t("sourceWhen"), new Date(source.at).toLocaleString(lang())]] : []),
    ...(source.page ? [[t("sourcePage"), source.page]] : []),
    ...Object.entries(source.utm || {}),
    ...(source.referrer ? [[t("sourceReferrer"), source.referrer]] : []),
  ];
  return html`<section class="lead-source" aria-label=${t("source")}><h2>${t("source")}</h2>
    <dl class="fields">${rows.map(([k, v]) => html`<div key=${k}><dt>${k}</dt><dd>${v}</dd></div>`)}</dl></section>`;
}

// The lead's latest calls, with their recordings, beside the conversation.
function LeadCalls({ messages }) {
  const calls = messages.filter((m) => m.call).slice(-5).reverse();
  if (!calls.length) return null;
  return html`<section class="lead-calls" aria-label=${t("calls")}><h2>${t("calls")}</h2>
    ${calls.map((m) => html`<div class="lead-call" key=${m.id}>
      <div class=${`call-${m.call.status}`}>☎ ${callLine(m.call)}</div>
      <div class="empty">${new Date(m.occurred_at).toLocaleString(lang())}</div>
      ${m.call.recording_url ? html`<${Recording} url=${m.call.recording_url} />` : null}</div>`)}
  </section>`;
}

// The form's fields are uncontrolled: a live update of the lead changes what the operator
// has not touched (defaultValue), never what they are editing.
function LeadCard({ state }) {
  const lead = state.lead;
  if (!lead) return html`<aside class="right" aria-label=${t("lead")}></aside>`;
  // What the customer calls themselves on other channels, one click from being the name.
  const names = (lead.name_suggestions || []).filter((n) => n && n !== lead.name);
  return html`<aside class="right lead-card" aria-label=${t("lead")}>
    <h2>${t("lead")}</h2>
    <form key=${`lead-${lead.id}`} onSubmit=${saveLead}>
      <label>${t("name")}<input name="name" defaultValue=${lead.name || ""} /></label>
      <label>${t("phones")}<textarea name="phones" defaultValue=${phoneLines(lead).join("\n")}></textarea></label>
      <label>${t("emails")}<textarea name="emails" defaultValue=${lead.emails.join("\n")}></textarea></label>
      <button type="submit">${t("save")}</button>
    </form>
    ${names.length ? html`<section class="suggestions name-suggestions" aria-label=${t("suggestedNames")}>
      <h3>${t("suggestedNames")}</h3>
      ${names.map((name) => html`<div class="suggestion" key=${name}>
        <span>${name}</span>
        <button onClick=${() => applyName(name)}>${t("useName")}</button></div>`)}
    </section>` : null}
    ${lead.phone_suggestions?.length ? html`<section class="suggestions" aria-label=${t("suggestedPhones")}>
      <h3>${t("suggestedPhones")}</h3>
      ${lead.phone_suggestions.map((phone) => html`<div class="suggestion" key=${phone} data-phone=${phone}>
        <span>${phone}</span>
        <button onClick=${() => acceptPhone(phone)}>${t("addPhone")}</button>
        <button onClick=${() => dismissPhone(phone)}>${t("dismiss")}</button></div>`)}
    </section>` : null}
    <${LeadSource} source=${lead.source} />
    <${LeadCalls} messages=${state.messages} />
    <h2>${t("identities")}</h2>
    ${lead.identities.map((i) => html`<div key=${`${i.kind}:${i.external_id}`}><${Kind} kind=${i.kind} /> ${i.external_id}</div>`)}
    <h2>${t("duplicates")}</h2>
    ${state.duplicates.length ? state.duplicates.map((d) => html`<div class="dup" key=${d.lead.id}>
      <div>${d.lead.name || `#${d.lead.id}`}</div>
      <div class="empty">${[...d.lead.phones, ...d.lead.emails].join(", ")}</div>
      <button onClick=${() => mergeLead(d.lead.id)}>${t("merge")}</button></div>`) : html`<p class="empty">${t("noDuplicates")}</p>`}
  </aside>`;
}

// -- the desk -----------------------------------------------------------------------------

function deskStatus(state, d) {
  if (d.status === "assigned") return `${t("status_assigned")} ${operatorName(state, d.operator_id)}`;
  if (d.status === "offered") return `${t("status_offered")} ${(d.offered_to || []).map((id) => operatorName(state, id)).join(", ")}`.trim();
  return t(`status_${d.status}`);
}

// How long the customer has waited: in the queue until someone holds it, then for an answer.
function deskWait(d, now) {
  const since = d.status === "assigned" ? d.waiting_since : (d.queued_at || d.created_at);
  return since ? (now - Date.parse(since)) / 1000 : null;
}

function DeskSummary({ desk, now }) {
  const s = desk.summary;
  const longest = s.waiting ? s.longest_wait_s + (now - desk.receivedAt) / 1000 : 0;
  const cards = [
    ["waiting", t("waitingNow"), s.waiting, s.waiting ? "alert" : ""],
    ["longest", t("longestWait"), s.waiting ? clock(longest) : "—", longest > 300 ? "alert" : ""],
    ["online", t("onlineNow"), s.online, "", s.away ? `${s.away} ${t("awayCount")}` : ""],
    ["load", t("loadNow"), s.load, s.load >= s.capacity && s.waiting ? "alert" : "", `${t("capacityOnline")} ${s.capacity}`],
    ["missed", t("missedToday"), s.missed_today, s.missed_today ? "alert" : ""],
  ];
  return html`<section class="desk-summary" aria-label=${t("deskSummary")}>
    ${cards.map(([key, label, value, tone, note]) => html`<div key=${key} class=${`card card-${key} ${tone}`}>
      <div class="card-label">${label}</div><div class="card-value">${value}</div>${note ? html`<div class="card-note">${note}</div>` : null}</div>`)}
  </section>`;
}

function DeskQueues({ desk, now, filter }) {
  const pick = (name) => store.set({ deskFilter: { queue: name } });
  return html`<section class="desk-queues" aria-label=${t("queues")}><h2>${t("queues")}</h2>
    <table class="queues"><thead><tr><th scope="col">${t("queue")}</th><th scope="col">${t("waiting")}</th>
      <th scope="col">${t("longestWait")}</th><th scope="col">${t("held")}</th></tr></thead>
      <tbody>${desk.queues.map((q) => html`<tr key=${q.name} data-queue=${q.name} class=${filter?.queue === q.name ? "selected" : ""}>
        <td><button class="link" onClick=${() => pick(q.name)}>${q.name}</button></td>
        <td class="waiting">${q.waiting}</td>
        <td>${q.waiting ? clock(q.oldest_wait_s + (now - desk.receivedAt) / 1000) : "—"}</td>
        <td class="held">${q.held}</td></tr>`)}</tbody></table>
  </section>`;
}

function DeskOperators({ state, desk, now, filter }) {
  const pick = (id) => store.set({ deskFilter: { operator: id } });
  const longest = (id) => Math.max(-1, ...desk.dialogs.filter((d) => d.operator_id === id && d.status === "assigned").map((d) => deskWait(d, now) ?? -1));
  return html`<section class="desk-operators" aria-label=${t("operators")}><h2>${t("operators")}</h2>
    <table class="operators"><thead><tr><th scope="col">${t("operators")}</th><th scope="col">${t("presence")}</th>
      <th scope="col">${t("load")}</th><th scope="col">${t("longestCustomerWait")}</th></tr></thead>
      <tbody>${desk.operators.map((o) => {
        const wait = longest(o.id);
        return html`<tr key=${o.id} data-operator=${o.id} class=${filter?.operator === o.id ? "selected" : ""}>
          <td><button class="link" onClick=${() => pick(o.id)}>${o.name}</button></td>
          <td><span class=${`presence-dot presence-${o.presence}`} aria-hidden="true"></span> ${t(o.presence)}</td>
          <td class="load">${o.load}/${o.max_dialogs}</td>
          <td class=${wait > 300 ? "late" : ""}>${wait >= 0 ? clock(wait) : "—"}</td></tr>`;
      })}</tbody></table>
  </section>`;
}

function DeskDialogs({ state, desk, now, filter }) {
  const shown = desk.dialogs.filter((d) => (!filter ? true : filter.queue !== undefined ? d.queue === filter.queue : d.operator_id === filter.operator));
  const chip = filter ? (filter.queue !== undefined ? `${t("queue")}: ${filter.queue}` : `${t("operators")}: ${operatorName(state, filter.operator)}`) : null;
  return html`<section class="desk-dialogs" aria-label=${t("deskDialogs")}>
    <div class="desk-dialogs-head"><h2>${t("deskDialogs")}</h2>
      ${chip ? html`<button class="filter-chip" title=${t("filterClear")} onClick=${() => store.set({ deskFilter: null })}>${chip} ×</button>` : null}
      ${desk.dialogs_total > desk.dialogs.length ? html`<span class="empty">${desk.dialogs.length} ${t("shownOf")} ${desk.dialogs_total}</span>` : null}</div>
    ${shown.length ? html`<table class="desk-list"><thead><tr><th scope="col">${t("customer")}</th><th scope="col">${t("channel")}</th>
      <th scope="col">${t("queue")}</th><th scope="col">${t("status")}</th><th scope="col">${t("waitFor")}</th></tr></thead>
      <tbody>${shown.map((d) => {
        const wait = deskWait(d, now);
        return html`<tr key=${d.id} data-dialog=${d.id} class=${`status-${d.status}${state.monitorId === d.id ? " selected" : ""}`}>
          <td><button class="link open-monitor" onClick=${() => openMonitor(d.id)}>${leadName(d)}</button>
            ${d.last_text ? html`<div class="dialog-last">${d.last_text}</div>` : null}</td>
          <td><${Kind} kind=${d.channel_kind} name=${d.channel} /></td>
          <td>${d.queue}</td>
          <td class="desk-status">${deskStatus(state, d)}</td>
          <td class=${`wait${wait !== null && wait > 300 ? " late" : ""}`}>${wait !== null ? clock(wait) : "—"}</td></tr>`;
      })}</tbody></table>` : html`<p class="empty">${t("deskNone")}</p>`}
  </section>`;
}

// A dialog watched from the desk: read-only for the customer; a note for the operator, a
// take-over, a reassignment with a comment, or closing it, each in the timeline.
function Monitor({ state }) {
  const id = state.monitorId;
  const box = useRef(null);
  const dialog = state.supervisor?.dialogs.find((d) => d.id === id);
  const name = state.lead?.name || (dialog ? leadName(dialog) : `#${id}`);
  return html`<section class="monitor conversation" aria-label=${t("monitor")}>
    <div class="conv-head">
      <button class="back" onClick=${closeMonitor} aria-label=${t("back")} title=${t("back")}>←</button>
      <strong>${name}</strong>
      ${dialog ? html`<${Kind} kind=${dialog.channel_kind} name=${dialog.channel} />` : null}
      <span class="monitor-status">${dialog ? deskStatus(state, dialog) : t("status_closed")}</span>
    </div>
    <div class="monitor-actions">
      <span class="empty monitor-hint">${t("monitor")}: ${t("monitorHint")}</span>
      ${dialog ? html`<button class="primary take-over" onClick=${() => takeOver(id)}>${t("takeOver")}</button>
        <button class="danger close" onClick=${() => send({ type: "close", dialog_id: id })}>${t("close")}</button>
        <${HandOver} key=${`reassign-${id}`} state=${state} dialogId=${id} exclude=${null} label="reassign" placeholder="reassignTo" />` : null}
    </div>
    ${dialog ? html`<${HandoverNote} dialog=${dialog} />` : null}
    <${Messages} state=${state} />
    ${dialog ? html`<div class="composer note-composer">
      <textarea ref=${box} placeholder=${t("notePlaceholder")} aria-label=${t("notePlaceholder")}
        onKeyDown=${(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); addNote(id, box.current); } }}></textarea>
      <div class="send-buttons"><button class="add-note primary" onClick=${() => addNote(id, box.current)}>${t("addNote")}</button></div>
    </div>` : null}
  </section>`;
}

function Desk({ state }) {
  const now = useNow(1000);
  const desk = state.supervisor;
  if (!desk) return html`<p class="loading" role="status">…</p>`;
  const filter = state.deskFilter;
  return html`<div class=${`desk${state.monitorId ? " monitoring" : ""}`}>
    <main class="desk-main" aria-label=${t("desk")}>
      <${DeskSummary} desk=${desk} now=${now} />
      <div class="desk-tables">
        <${DeskQueues} desk=${desk} now=${now} filter=${filter} />
        <${DeskOperators} state=${state} desk=${desk} now=${now} filter=${filter} />
      </div>
      <${DeskDialogs} state=${state} desk=${desk} now=${now} filter=${filter} />
    </main>
    ${state.monitorId ? html`<${Monitor} state=${state} />` : null}
  </div>`;
}

function ViewSwitch({ state }) {
  const views = [["list", "viewList"], ["conversation", "viewConversation"], ["lead", "viewLead"]];
  return html`<nav class="views" aria-label=${t("views")}>
    ${views.map(([view, label]) => html`<button key=${view} class=${`view-${view}${state.view === view ? " active" : ""}`}
      aria-pressed=${state.view === view ? "true" : "false"} onClick=${() => store.set({ view })}>${t(label)}</button>`)}
  </nav>`;
}

function Help() {
  const rows = [["?", "shortcut_help"], ["a", "shortcut_accept"], ["j", "shortcut_next"], ["k", "shortcut_prev"],
    ["r", "shortcut_reply"], ["/", "shortcut_search"], ["Ctrl+Enter", "shortcut_send"], ["Esc", "shortcut_escape"]];
  return html`<div class="help" role="dialog" aria-modal="true" aria-label=${t("help")}>
    <div class="help-box"><h2>${t("help")}</h2>
      <dl>${rows.map(([key, label]) => html`<div key=${key}><dt><kbd>${key}</kbd></dt><dd>${t(label)}</dd></div>`)}</dl>
      <button class="primary" onClick=${() => store.set({ help: false })}>${t("helpClose")}</button></div>
  </div>`;
}

function Console({ state }) {
  const desk = state.page === "desk" && ["supervisor", "admin"].includes(state.operator.role);
  const admin = state.page === "admin" && state.operator.role === "admin";
  const reports = state.page === "reports" && ["supervisor", "admin"].includes(state.operator.role);
  return html`<div class="shell">
    <${Header} state=${state} />
    ${state.connected ? null : html`<div class="banner" role="status">${t("disconnected")}</div>`}
    <${CallPops} calls=${state.calls} />
    ${admin ? html`<${AdminPage} state=${state} store=${store} api=${api} toast=${toast} />`
      : reports ? html`<${ReportsPage} state=${state} api=${api} toast=${toast} />`
      : desk ? html`<${Desk} state=${state} />` : html`<${ViewSwitch} state=${state} />
    <div class=${`layout view-${state.view}`}>
      <aside class="left"><${SearchBox} search=${state.search} /><${Offers} offers=${state.offers} />
        ${state.search ? html`<${SearchResults} search=${state.search} />` : html`<${DialogList} state=${state} />`}</aside>
      <${Conversation} state=${state} />
      <${LeadCard} state=${state} />
    </div>`}
    ${state.help ? html`<${Help} />` : null}
  </div>`;
}

function App() {
  const [state, setState] = useState(store.get());
  // Subscribed at once after the first render (a layout effect; a plain effect waits for a
  // paint, which a background tab may delay), then caught up with whatever changed before.
  useLayoutEffect(() => { const stop = store.subscribe(setState); setState(store.get()); return stop; }, []);
  const unread = state.dialogs ? [...state.dialogs.values()].reduce((n, d) => n + (d.unread || 0), 0) : 0;
  document.title = unread ? `(${unread}) ${t("title")}` : t("title");
  document.documentElement.lang = lang();
  if (!state.token) return html`<${Login} />`;
  if (!state.operator) return html`<p class="loading" role="status">…</p>`;
  return html`<${Console} state=${state} />`;
}

// -- keyboard -----------------------------------------------------------------------------

function onKey(event) {
  const state = store.get();
  if (!state.operator) return;
  if (event.key === "Escape" && state.help) { store.set({ help: false }); return; }
  const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  if (state.page === "desk" && ["supervisor", "admin"].includes(state.operator.role)) {
    // The desk has no dialogs of one's own to move between: help, and leaving a monitor.
    if (event.key === "?") store.set({ help: !state.help });
    else if (event.key === "Escape" && state.monitorId !== null) closeMonitor();
    else return;
    event.preventDefault();
    return;
  }
  const items = sortedDialogs(state);
  const index = items.findIndex((d) => d.id === state.selectedId);
  if (event.key === "?") store.set({ help: !state.help });
  else if (event.key === "a" && state.offers.size) send({ type: "accept", dialog_id: [...state.offers.keys()][0] });
  else if (event.key === "j" && items.length) openDialog(items[Math.min(items.length - 1, index + 1)].id);
  else if (event.key === "k" && items.length) openDialog(items[Math.max(0, index - 1)].id);
  else if (event.key === "r") { event.preventDefault(); document.querySelector(".composer textarea")?.focus(); }
  else if (event.key === "/") {
    // On a phone the box is on the list's view: shown first, then focused.
    store.set({ view: "list" });
    requestAnimationFrame(() => document.querySelector(".search input")?.focus());
  }
  else return;
  event.preventDefault();
}

document.addEventListener("keydown", onKey);
render(html`<${App} />`, document.getElementById("app"));
resume();
