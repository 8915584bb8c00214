// The console's one client state, fed by the websocket's `hello` and frames and by API
// answers. Views read it; nothing else keeps a copy. Every change makes a new state object,
// so a view re-renders only what changed (Preact's keyed diff), never what the operator is
// working in.

export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    set(patch) {
      const change = typeof patch === "function" ? patch(state) : patch;
      state = { ...state, ...change };
      for (const listener of listeners) listener(state);
    },
    subscribe(listener) { listeners.add(listener); return () => listeners.delete(listener); },
  };
}

export const store = createStore({
  token: sessionStorage.getItem("hub.token"),
  checking: Boolean(sessionStorage.getItem("hub.token")),  // a stored token not yet verified
  operator: null,
  presence: "offline",
  dialogs: new Map(),       // id -> dialog summary (lead, unread, last_text, last_at, waiting_since)
  offers: new Map(),        // dialog id -> {dialog, lead, deadline}
  calls: new Map(),         // call id -> screen pop {call, lead, recent}, while it rings and after
  selectedId: null,
  messages: [],             // the open lead's interactions, oldest first
  olderCursor: null,        // `before` for the next older page; null when all are loaded
  loadingOlder: false,
  lead: null,
  duplicates: [],
  queues: [],
  operators: [],            // colleagues with live presence (transfer targets)
  supervisor: null,         // the desk's latest frame (supervisors), with when it came
  page: sessionStorage.getItem("hub.page") || "console",  // console | desk (supervisors)
  monitorId: null,          // the dialog watched from the desk
  deskFilter: null,         // {queue} or {operator}: the desk's dialogs of one
  connected: false,
  view: "list",             // phone size: list | conversation | lead
  sort: localStorage.getItem("hub.sort") || "activity",
  channelFilter: localStorage.getItem("hub.channel") || "",
  statusFilter: localStorage.getItem("hub.status") || "open",  // open | waiting | closed
  closedDialogs: null,      // the operator's recently closed dialogs, when that list is shown
  search: null,
  help: false,
});

// Drafts are per operator and dialog, in localStorage: a reply never follows the operator to
// another customer, and survives a reload.
export function draftKey(operatorId, dialogId) { return `hub.draft.${operatorId}.${dialogId}`; }
export function loadDraft(operatorId, dialogId) { return localStorage.getItem(draftKey(operatorId, dialogId)) || ""; }
export function saveDraft(operatorId, dialogId, text) {
  if (text) localStorage.setItem(draftKey(operatorId, dialogId), text);
  else localStorage.removeItem(draftKey(operatorId, dialogId));
}
