// The admin pages: channels, operators, queues, canned responses and API keys, over the same
// REST API a script would use (an admin's session). Forms are uncontrolled (the browser keeps
// what is typed across live updates) and built from field lists; a channel's form from its
// kind's settings as the hub describes them (GET /api/v1/channel-kinds), so a new kind needs
// nothing here. Secrets are write-only: shown as set or not, left empty to keep.
import { html, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { t } from "./i18n.js";

const TABS = ["channels", "operators", "queues", "canned", "apikeys"];

const LOADERS = {
  channels: async (api) => {
    const [channels, kinds] = await Promise.all([api("/api/v1/channels"), api("/api/v1/channel-kinds")]);
    return { channels: channels.items, kinds: kinds.items };
  },
  operators: async (api) => ({ operators: (await api("/api/v1/operators?include_disabled=true")).items }),
  queues: async (api) => {
    const [queues, channels] = await Promise.all([api("/api/v1/queues"), api("/api/v1/channels")]);
    return { queues: queues.items, channels: channels.items };
  },
  canned: async (api) => ({ canned: (await api("/api/v1/canned-responses")).items }),
  apikeys: async (api) => ({ keys: (await api("/api/v1/apikeys")).items }),
};

export async function loadAdmin(store, api, toast, tab) {
  try {
    const data = await LOADERS[tab](api);
    store.set({ admin: { ...(store.get().admin || {}), ...data, loaded: tab } });
  } catch (error) { toast(error.message); }
}

// One form from a list of fields; `onSubmit` gets the values (numbers as numbers, checked
// boxes as lists, empty text as "").
function Form({ fields, initial = {}, submit, onSubmit, onCancel, id }) {
  const send = (event) => {
    event.preventDefault();
    const form = event.target;
    const values = {};
    for (const f of fields) {
      if (f.type === "checks") values[f.name] = [...form.querySelectorAll(`input[name="${f.name}"]:checked`)].map((i) => i.value);
      else if (f.type === "checkbox") values[f.name] = form.elements[f.name].checked;
      else if (f.type === "number") values[f.name] = form.elements[f.name].value === "" ? null : Number(form.elements[f.name].value);
      else values[f.name] = form.elements[f.name].value;
    }
    onSubmit(values, form);
  };
  return html`<form class="admin-form" id=${id} onSubmit=${send}>
    ${fields.map((f) => html`<div class=${`field field-${f.type || "text"}`} key=${f.name}>
      ${f.type === "checks" ? html`<fieldset><legend>${f.label}</legend>
          ${f.options.map(([value, label]) => html`<label class="check" key=${value}><input type="checkbox" name=${f.name} value=${value}
            defaultChecked=${(initial[f.name] || []).includes(value)} /> ${label}</label>`)}</fieldset>`
        : f.type === "checkbox" ? html`<label class="check"><input type="checkbox" name=${f.name} defaultChecked=${Boolean(initial[f.name])} /> ${f.label}</label>`
        : html`<label>${f.label}${f.required ? " *" : ""}
          ${f.type === "select" ? html`<select name=${f.name}>
              ${f.options.map(([value, label]) => html`<option key=${value} value=${value}
                selected=${value === (initial[f.name] ?? f.options[0][0])}>${label}</option>`)}</select>`
            : f.type === "textarea" ? html`<textarea name=${f.name} defaultValue=${initial[f.name] ?? ""} placeholder=${f.placeholder || ""}></textarea>`
            : html`<input name=${f.name} type=${f.type || "text"} defaultValue=${initial[f.name] ?? ""} placeholder=${f.placeholder || ""}
                required=${Boolean(f.required && !f.keep)} autocomplete=${f.type === "password" ? "new-password" : "off"} />`}</label>`}
      ${f.help ? html`<small class="help-text">${f.help}</small>` : null}
    </div>`)}
    <div class="form-actions"><button class="primary" type="submit">${submit}</button>
      ${onCancel ? html`<button type="button" onClick=${onCancel}>${t("cancel")}</button>` : null}</div>
  </form>`;
}

// A button asking once more before it acts (remove, revoke, disable).
function Confirm({ label, confirm, onConfirm, className = "" }) {
  const [asking, setAsking] = useState(false);
  return asking
    ? html`<button class=${`danger ${className}`} onClick=${() => { setAsking(false); onConfirm(); }}>${confirm}</button>`
    : html`<button class=${className} onClick=${() => setAsking(true)}>${label}</button>`;
}

const csv = (value) => value.split(",").map((v) => v.trim()).filter(Boolean);

function StateBadge({ status }) {
  const where = status.node ? ` · ${status.node}` : "";
  return html`<span class=${`state state-${status.state}`}>${t(`channel_${status.state}`)}${where}</span>
    ${status.error ? html`<div class="state-error">${status.error}</div>` : null}`;
}

function ChannelsTab({ admin, act }) {
  const [editing, setEditing] = useState(null);  // a channel, or {kind} for a new one
  const [kind, setKind] = useState(admin.kinds[0]?.kind);
  const kindOf = (name) => admin.kinds.find((k) => k.kind === name);
  const fieldsOf = (spec, existing) => [
    { name: "name", label: t("name"), required: true },
    ...spec.settings.map((s) => ({
      name: `s.${s.name}`,
      label: s.name,
      type: s.secret ? "password" : s.choices.length ? "select" : "text",
      options: s.choices.map((c) => [c, c]),
      required: s.required && !s.generated,
      keep: existing && s.secret,
      placeholder: s.secret && existing?.secrets[s.name] ? t("secretKept") : s.default || "",
      help: [s.help, s.generated ? t("generatedHint") : ""].filter(Boolean).join(". "),
    })),
  ];
  // What to send: a new channel's non-empty values; for an edit, what changed (an empty
  // secret is kept, an emptied setting is removed).
  const settingsFrom = (values, existing) => {
    const settings = {};
    for (const [key, value] of Object.entries(values)) {
      if (!key.startsWith("s.")) continue;
      const name = key.slice(2);
      if (!existing || name in existing.secrets) {
        if (value !== "") settings[name] = value;
      } else if ((existing.settings[name] ?? "") !== value) {
        settings[name] = value === "" ? null : value;
      }
    }
    return settings;
  };
  const create = (values) => act(async (api) => {
    const made = await api("/api/v1/channels", { method: "POST", json: { kind, name: values.name, settings: settingsFrom(values, null) } });
    setEditing(null);
    return made.paste?.length ? made.paste.map((p) => `${p.setting} = ${p.value} — ${t("pasteAt")} ${p.where}`).join("\n") : null;
  });
  const save = (channel, values) => act(async (api) => {
    const json = { settings: settingsFrom(values, channel) };
    if (values.name !== channel.name) json.name = values.name;
    await api(`/api/v1/channels/${channel.id}`, { method: "PATCH", json });
    setEditing(null);
  });
  const spec = editing?.id ? kindOf(editing.kind) : kindOf(kind);
  return html`<section class="admin-section" aria-label=${t("admin_channels")}>
    <div class="admin-head"><h2>${t("admin_channels")}</h2>
      <button class="primary add" onClick=${() => setEditing({ kind })}>${t("addChannel")}</button></div>
    ${editing && !editing.id ? html`<div class="admin-panel">
      <label class="kind-pick">${t("kind")} <select value=${kind} onChange=${(e) => setKind(e.target.value)}>
        ${admin.kinds.map((k) => html`<option key=${k.kind} value=${k.kind}>${k.title}</option>`)}</select></label>
      <${Form} key=${`new-${kind}`} id="channel-form" fields=${fieldsOf(spec, null)} submit=${t("create")} onSubmit=${create} onCancel=${() => setEditing(null)} /></div>` : null}
    ${editing?.id ? html`<div class="admin-panel"><h3>${editing.name}</h3>
      <${Form} key=${`edit-${editing.id}`} id="channel-form" fields=${fieldsOf(spec, editing)}
        initial=${{ name: editing.name, ...Object.fromEntries(Object.entries(editing.settings).map(([k, v]) => [`s.${k}`, v])) }}
        submit=${t("save")} onSubmit=${(values) => save(editing, values)} onCancel=${() => setEditing(null)} /></div>` : null}
    <table class="admin-table channels-table"><thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("kind")}</th>
      <th scope="col">${t("status")}</th><th scope="col">${t("actions")}</th></tr></thead>
      <tbody>${admin.channels.map((c) => html`<tr key=${c.id} data-channel=${c.name}>
        <td><strong>${c.name}</strong>${c.inbound_path ? html`<div class="muted-line">${c.inbound_url || c.inbound_path}</div>` : null}</td>
        <td>${kindOf(c.kind)?.title || c.kind}</td>
        <td><${StateBadge} status=${c.status} /></td>
        <td><div class="row-actions">
          <button class="edit" onClick=${() => setEditing(c)}>${t("edit")}</button>
          ${c.enabled
            ? html`<${Confirm} className="disable" label=${t("disable")} confirm=${t("confirmDisable")}
                onConfirm=${() => act((api) => api(`/api/v1/channels/${c.id}`, { method: "PATCH", json: { enabled: false } }))} />`
            : html`<button class="enable" onClick=${() => act((api) => api(`/api/v1/channels/${c.id}`, { method: "PATCH", json: { enabled: true } }))}>${t("enable")}</button>`}
          <${Confirm} className="remove" label=${t("remove")} confirm=${t("confirmRemove")}
            onConfirm=${() => act(async (api) => ((await api(`/api/v1/channels/${c.id}`, { method: "DELETE" })).deleted ? null : t("keptDisabled")))} />
        </div></td></tr>`)}</tbody></table>
  </section>`;
}

function OperatorsTab({ admin, act, me }) {
  const [editing, setEditing] = useState(null);
  const roles = [["operator", t("role_operator")], ["supervisor", t("role_supervisor")], ["admin", t("role_admin")]];
  const common = [
    { name: "name", label: t("name"), required: true },
    { name: "role", label: t("role"), type: "select", options: roles },
    { name: "skills", label: t("skills"), help: t("commaHint") },
    { name: "max_dialogs", label: t("capacity"), type: "number" },
    { name: "extension", label: t("extensionLabel") },
  ];
  const body = (values) => ({
    name: values.name, role: values.role, skills: csv(values.skills),
    ...(values.max_dialogs ? { max_dialogs: values.max_dialogs } : {}),
    extension: values.extension.trim() || null,
  });
  const create = (values) => act(async (api) => {
    await api("/api/v1/operators", { method: "POST", json: { login: values.login, password: values.password, ...body(values) } });
    setEditing(null);
  });
  const save = (operator, values) => act(async (api) => {
    await api(`/api/v1/operators/${operator.id}`, { method: "PATCH", json: { ...body(values), ...(values.password ? { password: values.password } : {}) } });
    setEditing(null);
  });
  return html`<section class="admin-section" aria-label=${t("admin_operators")}>
    <div class="admin-head"><h2>${t("admin_operators")}</h2>
      <button class="primary add" onClick=${() => setEditing({})}>${t("addOperator")}</button></div>
    ${editing && !editing.id ? html`<div class="admin-panel"><${Form} id="operator-form" submit=${t("create")}
      fields=${[{ name: "login", label: t("login"), required: true }, ...common, { name: "password", label: t("password"), type: "password", required: true, help: t("passwordHint") }]}
      initial=${{ max_dialogs: 5, role: "operator" }} onSubmit=${create} onCancel=${() => setEditing(null)} /></div>` : null}
    ${editing?.id ? html`<div class="admin-panel"><h3>${editing.login}</h3><${Form} key=${editing.id} id="operator-form" submit=${t("save")}
      fields=${[...common, { name: "password", label: t("newPassword"), type: "password", keep: true, help: t("newPasswordHint") }]}
      initial=${{ ...editing, skills: editing.skills.join(", "), extension: editing.extension || "" }}
      onSubmit=${(values) => save(editing, values)} onCancel=${() => setEditing(null)} /></div>` : null}
    <table class="admin-table operators-table"><thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("role")}</th>
      <th scope="col">${t("skills")}</th><th scope="col">${t("capacity")}</th><th scope="col">${t("status")}</th><th scope="col">${t("actions")}</th></tr></thead>
      <tbody>${admin.operators.map((o) => html`<tr key=${o.id} data-login=${o.login} class=${o.disabled ? "disabled-row" : ""}>
        <td><strong>${o.name}</strong><div class="muted-line">${o.login}${o.extension ? ` · ${t("extension")} ${o.extension}` : ""}</div></td>
        <td>${t(`role_${o.role}`)}</td><td>${o.skills.join(", ") || "—"}</td><td>${o.max_dialogs}</td>
        <td>${o.disabled ? t("disabledState") : t(o.presence || "offline")}</td>
        <td><div class="row-actions">
          <button class="edit" onClick=${() => setEditing(o)}>${t("edit")}</button>
          ${o.id === me ? null : o.disabled
            ? html`<button class="enable" onClick=${() => act((api) => api(`/api/v1/operators/${o.id}`, { method: "PATCH", json: { disabled: false } }))}>${t("enable")}</button>`
            : html`<${Confirm} className="disable" label=${t("disable")} confirm=${t("confirmDisable")}
                onConfirm=${() => act((api) => api(`/api/v1/operators/${o.id}`, { method: "DELETE" }))} />`}
        </div></td></tr>`)}</tbody></table>
  </section>`;
}

function QueuesTab({ admin, act }) {
  const [editing, setEditing] = useState(null);
  const strategies = ["least_busy", "round_robin", "sticky", "all"].map((s) => [s, t(`strategy_${s}`)]);
  const fields = [
    { name: "name", label: t("name"), required: true },
    { name: "strategy", label: t("strategy"), type: "select", options: strategies },
    { name: "offer_timeout_s", label: t("offerTimeout"), type: "number" },
    { name: "channels", label: t("admin_channels"), type: "checks", options: admin.channels.map((c) => [c.name, c.name]) },
    { name: "skills", label: t("skills"), help: t("commaHint") },
    { name: "hours", label: t("hoursLabel"), placeholder: "mon-fri 09:00-13:00; mon-fri 14:00-18:00; closed 2026-12-31", help: t("hoursHint") },
    { name: "timezone", label: t("timezone"), placeholder: "Europe/Moscow" },
    { name: "auto_reply", label: t("autoReply"), type: "textarea" },
  ];
  const body = (values) => ({
    name: values.name, strategy: values.strategy, channels: values.channels, skills: csv(values.skills),
    ...(values.offer_timeout_s ? { offer_timeout_s: values.offer_timeout_s } : {}),
    hours: values.hours.trim() || null, timezone: values.timezone.trim() || "UTC", auto_reply: values.auto_reply.trim() || null,
  });
  const create = (values) => act(async (api) => { await api("/api/v1/queues", { method: "POST", json: body(values) }); setEditing(null); });
  const save = (queue, values) => act(async (api) => { await api(`/api/v1/queues/${queue.id}`, { method: "PATCH", json: body(values) }); setEditing(null); });
  return html`<section class="admin-section" aria-label=${t("queues")}>
    <div class="admin-head"><h2>${t("queues")}</h2>
      <button class="primary add" onClick=${() => setEditing({})}>${t("addQueue")}</button></div>
    ${editing ? html`<div class="admin-panel">${editing.id ? html`<h3>${editing.name}</h3>` : null}
      <${Form} key=${editing.id || "new"} id="queue-form" fields=${fields} submit=${editing.id ? t("save") : t("create")}
        initial=${editing.id ? { ...editing, skills: editing.skills.join(", "), hours: editing.hours || "", auto_reply: editing.auto_reply || "" } : { offer_timeout_s: 30, timezone: "UTC" }}
        onSubmit=${(values) => (editing.id ? save(editing, values) : create(values))} onCancel=${() => setEditing(null)} /></div>` : null}
    ${admin.queues.length ? html`<table class="admin-table queues-table"><thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("strategy")}</th>
      <th scope="col">${t("admin_channels")}</th><th scope="col">${t("hoursLabel")}</th><th scope="col">${t("actions")}</th></tr></thead>
      <tbody>${admin.queues.map((q) => html`<tr key=${q.id} data-queue=${q.name}>
        <td><strong>${q.name}</strong><div class="muted-line">${q.skills.join(", ")}</div></td>
        <td>${t(`strategy_${q.strategy}`)} · ${q.offer_timeout_s} ${t("seconds")}</td>
        <td>${q.channels.join(", ") || t("allChannelsDefault")}</td>
        <td>${q.hours ? `${q.hours} (${q.timezone})` : t("alwaysOpen")}</td>
        <td><div class="row-actions"><button class="edit" onClick=${() => setEditing(q)}>${t("edit")}</button>
          <${Confirm} className="remove" label=${t("remove")} confirm=${t("confirmRemove")}
            onConfirm=${() => act((api) => api(`/api/v1/queues/${q.id}`, { method: "DELETE" }))} /></div></td></tr>`)}</tbody></table>`
      : html`<p class="empty">${t("noQueues")}</p>`}
  </section>`;
}

function CannedTab({ admin, act }) {
  const [editing, setEditing] = useState(null);
  const fields = [
    { name: "language", label: t("language"), type: "select", options: [["en", "English"], ["ru", "Русский"]] },
    { name: "title", label: t("titleLabel"), required: true },
    { name: "text", label: t("textLabel"), type: "textarea", help: t("cannedHint") },
  ];
  const submit = (values) => act(async (api) => {
    if (editing.id) await api(`/api/v1/canned-responses/${editing.id}`, { method: "PATCH", json: values });
    else await api("/api/v1/canned-responses", { method: "POST", json: values });
    setEditing(null);
  });
  return html`<section class="admin-section" aria-label=${t("canned")}>
    <div class="admin-head"><h2>${t("cannedTitle")}</h2>
      <button class="primary add" onClick=${() => setEditing({})}>${t("addCanned")}</button></div>
    ${editing ? html`<div class="admin-panel"><${Form} key=${editing.id || "new"} id="canned-form" fields=${fields}
      initial=${editing} submit=${editing.id ? t("save") : t("create")} onSubmit=${submit} onCancel=${() => setEditing(null)} /></div>` : null}
    <table class="admin-table canned-table"><thead><tr><th scope="col">${t("language")}</th><th scope="col">${t("titleLabel")}</th>
      <th scope="col">${t("textLabel")}</th><th scope="col">${t("actions")}</th></tr></thead>
      <tbody>${admin.canned.map((c) => html`<tr key=${c.id} data-title=${c.title}><td>${c.language}</td><td><strong>${c.title}</strong></td>
        <td class="canned-text">${c.text}</td>
        <td><div class="row-actions"><button class="edit" onClick=${() => setEditing(c)}>${t("edit")}</button>
          <${Confirm} className="remove" label=${t("remove")} confirm=${t("confirmRemove")}
            onConfirm=${() => act((api) => api(`/api/v1/canned-responses/${c.id}`, { method: "DELETE" }))} /></div></td></tr>`)}</tbody></table>
  </section>`;
}

function KeysTab({ admin, act }) {
  const [making, setMaking] = useState(false);
  const scopes = ["leads", "dialogs", "unsorted", "webhooks", "reports", "admin"];
  const create = (values) => act(async (api) => {
    const made = await api("/api/v1/apikeys", { method: "POST", json: { name: values.name, scopes: values.scopes } });
    setMaking(false);
    return `${t("keyOnce")}\n${made.key}`;
  });
  return html`<section class="admin-section" aria-label=${t("admin_apikeys")}>
    <div class="admin-head"><h2>${t("admin_apikeys")}</h2>
      <button class="primary add" onClick=${() => setMaking(true)}>${t("addKey")}</button></div>
    ${making ? html`<div class="admin-panel"><${Form} id="key-form" submit=${t("create")}
      fields=${[{ name: "name", label: t("name"), required: true, placeholder: "crm" },
        { name: "scopes", label: t("scopes"), type: "checks", options: scopes.map((s) => [s, s === "admin" ? t("adminScope") : s]) }]}
      initial=${{ scopes: ["leads", "dialogs", "unsorted", "webhooks", "reports"] }} onSubmit=${create} onCancel=${() => setMaking(false)} /></div>` : null}
    <table class="admin-table keys-table"><thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("scopes")}</th>
      <th scope="col">${t("lastUsed")}</th><th scope="col">${t("status")}</th><th scope="col">${t("actions")}</th></tr></thead>
      <tbody>${admin.keys.map((k) => html`<tr key=${k.id} data-key=${k.name} class=${k.revoked ? "disabled-row" : ""}>
        <td><strong>${k.name}</strong><div class="muted-line">${k.prefix}…</div></td><td>${k.scopes.join(", ")}</td>
        <td>${k.last_used_at ? new Date(k.last_used_at).toLocaleString() : t("never")}</td>
        <td>${k.revoked ? t("revoked") : t("live")}</td>
        <td><div class="row-actions">${k.revoked ? null : html`<${Confirm} className="revoke" label=${t("revoke")} confirm=${t("confirmRevoke")}
          onConfirm=${() => act((api) => api(`/api/v1/apikeys/${k.id}`, { method: "DELETE" }))} />`}</div></td></tr>`)}</tbody></table>
  </section>`;
}

export function AdminPage({ state, store, api, toast }) {
  const tab = state.adminTab || "channels";
  const admin = state.admin || {};
  const [notice, setNotice] = useState(null);  // shown once: a new key, values to paste
  // Every change, then the tab read again; what the change returns is shown once.
  const act = async (change) => {
    try {
      const shown = await change(api);
      if (typeof shown === "string") setNotice(shown);
      await loadAdmin(store, api, toast, tab);
      toast(t("saved"));
    } catch (error) { toast(error.message); }
  };
  const open = (name) => { setNotice(null); store.set({ adminTab: name }); loadAdmin(store, api, toast, name); };
  const ready = admin.loaded === tab;
  const props = { admin, act, me: state.operator.id };
  return html`<main class="admin" aria-label=${t("admin")}>
    <nav class="admin-tabs" aria-label=${t("admin")}>${TABS.map((name) => html`<button key=${name}
      class=${`tab tab-${name}${tab === name ? " active" : ""}`} aria-pressed=${tab === name ? "true" : "false"}
      onClick=${() => open(name)}>${t(`admin_${name}`)}</button>`)}</nav>
    ${notice ? html`<div class="once" role="status"><pre>${notice}</pre>
      <button onClick=${() => setNotice(null)}>${t("dismiss")}</button></div>` : null}
    ${!ready ? html`<p class="loading" role="status">…</p>`
      : tab === "channels" ? html`<${ChannelsTab} ...${props} />`
      : tab === "operators" ? html`<${OperatorsTab} ...${props} />`
      : tab === "queues" ? html`<${QueuesTab} ...${props} />`
      : tab === "canned" ? html`<${CannedTab} ...${props} />`
      : html`<${KeysTab} ...${props} />`}
  </main>`;
}
