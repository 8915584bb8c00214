// The reports page for supervisors: a period in a time zone, the summary beside the period
// before it, one metric over time, the week's heatmap, tables by operator, channel and
// source, and the CSV of every care cycle. Everything comes from /api/v1/reports/*; the
// charts are plain SVG and CSS. Names (operators, channels) are rendered as text, never HTML.
import { html, useEffect, useRef, useState } from "./vendor/preact-htm-3.1.1.module.js";
import { lang, t } from "./i18n.js";

const DAY = 86_400_000;
const CARDS = [
  ["leads_new", "value"], ["dialogs_new", "value"], ["first_response_s", "p50"], ["queue_wait_s", "p50"],
  ["resolution_s", "p50"], ["unanswered", "value"], ["customer_silent", "value"], ["calls_missed", "value"],
];
// Up is good for these; for the rest (waits, misses) down is good.
const MORE_IS_BETTER = new Set(["leads_new", "dialogs_new", "handled", "calls_answered", "calls_recovered"]);
const CHARTS = [
  ["cycles", "value"], ["leads_new", "value"], ["first_response_s", "p50"], ["first_response_s", "p90"],
  ["queue_wait_s", "p50"], ["unanswered", "value"], ["calls_missed", "value"],
];
const GROUP_METRICS = {
  operator: ["handled", "first_response_s", "unanswered_assigned", "offers", "offers_missed_share", "online_s", "talk_s"],
  channel: ["cycles", "first_response_s", "queue_wait_s", "unanswered", "calls_answered", "calls_missed"],
  source: ["leads_new", "cycles", "first_response_s", "unanswered"],
};
const COLUMNS = {
  operator: [["handled", "value"], ["first_response_s", "p50"], ["first_response_s", "p90"], ["unanswered_assigned", "value"],
    ["offers", "value"], ["offers_missed_share", "value"], ["online_s", "value"], ["talk_s", "mean"]],
  channel: [["cycles", "value"], ["first_response_s", "p50"], ["queue_wait_s", "p50"], ["unanswered", "value"],
    ["calls_answered", "value"], ["calls_missed", "value"]],
  source: [["leads_new", "value"], ["cycles", "value"], ["first_response_s", "p50"], ["unanswered", "value"]],
};

const zone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
const iso = (date) => date.toISOString().slice(0, 10);

// Today in a zone, as YYYY-MM-DD (the browser's clock, the report's zone).
function today(tz) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
  return parts;
}

function shift(day, days) { return iso(new Date(Date.parse(`${day}T00:00:00Z`) + days * DAY)); }

export function presetPeriod(preset, tz) {
  const end = today(tz);
  if (preset === "today") return { from: end, to: end };
  if (preset === "yesterday") return { from: shift(end, -1), to: shift(end, -1) };
  if (preset === "month") return { from: `${end.slice(0, 8)}01`, to: end };
  return { from: shift(end, preset === "30d" ? -29 : -6), to: end };
}

function interval(from, to) {
  const days = (Date.parse(to) - Date.parse(from)) / DAY + 1;
  return days <= 2 ? "hour" : days <= 92 ? "day" : "week";
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const s = Math.round(seconds);
  if (s < 60) return `${s} ${t("seconds")}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${t("minutesShort")} ${s % 60 ? `${s % 60} ${t("seconds")}` : ""}`.trim();
  if (s < 86400) return `${Math.floor(s / 3600)} ${t("hoursShort")} ${Math.round((s % 3600) / 60)} ${t("minutesShort")}`;
  return `${(s / 86400).toFixed(1)} ${t("daysShort")}`;
}

function shown(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "duration" || kind === "seconds") return duration(value);
  if (kind === "share") return `${Math.round(value * 100)}%`;
  return new Intl.NumberFormat(lang()).format(value);
}

// A first touch's kind in words; a kind this page does not know yet as the API names it.
const sourceName = (kind) => { const label = t(`src_${kind}`); return label === `src_${kind}` ? kind : label; };

const pick = (metrics, name, stat) => metrics?.[name]?.[stat] ?? null;

async function loadReports(api, query) {
  const base = new URLSearchParams({ from: query.from, to: query.to, tz: query.tz });
  if (query.channel) base.set("channel", query.channel);
  const url = (path, extra = {}) => `/api/v1/reports/${path}?${new URLSearchParams({ ...Object.fromEntries(base), ...extra })}`;
  const [summary, series, heat, defs, ...groups] = await Promise.all([
    api(url("summary")),
    api(url("series", { metric: query.chart[0], stat: query.chart[1], interval: interval(query.from, query.to) })),
    api(url("heatmap")),
    api("/api/v1/reports/metrics"),
    ...Object.entries(GROUP_METRICS).map(([by, metrics]) => api(url("summary", { group_by: by, metrics: metrics.join(",") }))),
  ]);
  const definitions = Object.fromEntries(defs.items.map((m) => [m.name, m]));
  return { summary, series, heat, definitions, groups: Object.fromEntries(Object.keys(GROUP_METRICS).map((by, i) => [by, groups[i]])) };
}

function Delta({ name, now, before }) {
  if (now === null || before === null || before === undefined || now === undefined) return html`<span class="delta">${t("noEarlier")}</span>`;
  if (before === 0 && now === 0) return html`<span class="delta">=</span>`;
  const change = before === 0 ? null : Math.round(((now - before) / before) * 100);
  const better = now === before ? null : (now > before) === MORE_IS_BETTER.has(name);
  const arrow = now > before ? "▲" : now < before ? "▼" : "=";
  return html`<span class=${`delta ${better === null ? "" : better ? "good" : "bad"}`} title=${t("previousPeriod")}>
    ${arrow} ${change === null ? "" : `${Math.abs(change)}%`}</span>`;
}

function Cards({ data }) {
  const { totals, previous } = data.summary;
  return html`<div class="report-cards">
    ${CARDS.map(([name, stat]) => {
      const def = data.definitions[name];
      const now = pick(totals, name, stat);
      return html`<div class="card" key=${name} title=${def?.definition || ""} data-metric=${name}>
        <div class="card-label">${t(`m_${name}`)}${stat !== "value" ? ` · ${stat}` : ""}</div>
        <div class="card-value">${shown(now, def?.kind)}</div>
        <div class="card-note"><${Delta} name=${name} now=${now} before=${pick(previous.totals, name, stat)} />
          ${def?.kind === "duration" ? html` · p90 ${duration(pick(totals, name, "p90"))}` : null}</div>
      </div>`;
    })}
  </div>`;
}

// One metric over time: bars for counts, a line for durations. Plain SVG scaled to its box.
// A round top for the axis (its half a round number too): 3 counts -> 4, 130 s -> 200 s.
function niceTop(max, kind) {
  if (max <= 0) return kind === "duration" ? 60 : 2;
  const unit = kind === "duration" && max >= 120 ? (max >= 7200 ? 3600 : 60) : 1;
  const scaled = max / unit;
  const power = 10 ** Math.floor(Math.log10(scaled));
  const step = [1, 2, 4, 5, 10].find((m) => m * power >= scaled) * power;
  return Math.max(step, unit === 1 && kind !== "duration" ? 2 : 0) * unit;
}

function Chart({ data, chart, setChart }) {
  // Drawn at the box's own width (text in a stretched drawing would be squeezed).
  const box = useRef(null);
  const [width, setWidth] = useState(720);
  useEffect(() => {
    const watch = new ResizeObserver(([entry]) => setWidth(Math.max(240, Math.round(entry.contentRect.width))));
    watch.observe(box.current);
    return () => watch.disconnect();
  }, []);
  const points = data.series.points;
  const kind = data.definitions[data.series.metric]?.kind;
  const values = points.map((p) => p.value);
  const top = niceTop(Math.max(0, ...values.filter((v) => v !== null)), kind);
  const W = width, H = 200, L = 52, B = 22, step = (W - L) / Math.max(1, points.length);
  const y = (v) => H - B - (v / top) * (H - B - 8);
  const label = (at) => {
    const d = new Date(at);
    const opts = data.series.interval === "hour" ? { hour: "2-digit", minute: "2-digit", timeZone: data.summary.period.tz }
      : { day: "numeric", month: "short", timeZone: data.summary.period.tz };
    return new Intl.DateTimeFormat(lang(), opts).format(d);
  };
  const every = Math.max(1, Math.ceil(points.length / Math.max(2, Math.floor(W / 80))));
  const line = points.map((p, i) => (p.value === null ? null : `${L + i * step + step / 2},${y(p.value)}`)).filter(Boolean).join(" ");
  return html`<section class="report-panel report-chart">
    <div class="report-panel-head"><h2>${t("overTime")}</h2>
      <select aria-label=${t("chartMetric")} onChange=${(e) => setChart(e.target.value.split(":"))}>
        ${CHARTS.map(([m, s]) => html`<option key=${`${m}:${s}`} value=${`${m}:${s}`} selected=${chart[0] === m && chart[1] === s}>
          ${t(`m_${m}`)}${s !== "value" ? ` · ${s}` : ""}</option>`)}
      </select></div>
    <div ref=${box} class="chart-box"><svg viewBox=${`0 0 ${W} ${H}`} width=${W} height=${H} role="img" aria-label=${t(`m_${data.series.metric}`)}>
      ${[0, 0.5, 1].map((f) => html`<g key=${f}><line class="grid" x1=${L} x2=${W} y1=${y(top * f)} y2=${y(top * f)} />
        <text class="axis" x=${L - 4} y=${y(top * f) + 4} text-anchor="end">${kind === "duration" ? duration(top * f) : Math.round(top * f)}</text></g>`)}
      ${kind === "duration"
        ? html`<polyline class="series-line" points=${line} />${points.map((p, i) => (p.value === null ? null
          : html`<circle key=${i} class="series-dot" cx=${L + i * step + step / 2} cy=${y(p.value)} r="3"><title>${label(p.at)}: ${duration(p.value)}</title></circle>`))}`
        : points.map((p, i) => html`<rect key=${i} class="bar" x=${L + i * step + 1} width=${Math.max(1, step - 2)} y=${y(p.value || 0)}
            height=${H - B - y(p.value || 0)}><title>${label(p.at)}: ${p.value}</title></rect>`)}
      ${points.map((p, i) => (i % every ? null : html`<text key=${`l${i}`} class="axis" x=${L + i * step + step / 2} y=${H - 6} text-anchor="middle">${label(p.at)}</text>`))}
    </svg></div>
  </section>`;
}

function Heatmap({ data }) {
  const rows = data.heat.rows;
  const top = Math.max(1, ...rows.flatMap((r) => r.hours));
  return html`<section class="report-panel report-heatmap">
    <div class="report-panel-head"><h2>${t("heatmap")}</h2><span class="muted">${t("heatmapHint")}</span></div>
    <div class="heatmap" role="table" tabindex="0" aria-label=${t("heatmap")}>
      <div class="heat-row heat-hours" role="row"><span role="columnheader"></span>
        ${Array.from({ length: 24 }, (_, h) => html`<span key=${h} role="columnheader">${h % 3 ? "" : h}</span>`)}</div>
      ${rows.map((r) => html`<div class="heat-row" role="row" key=${r.weekday}><span role="rowheader">${t(`wd_${r.weekday}`)}</span>
        ${r.hours.map((v, h) => html`<span key=${h} role="cell" class="heat-cell" title=${`${t(`wd_${r.weekday}`)} ${h}:00 — ${v}`}
          style=${`--heat:${v / top}`}>${v || ""}</span>`)}</div>`)}
    </div>
  </section>`;
}

function GroupTable({ data, by }) {
  const body = data.groups[by];
  const columns = COLUMNS[by];
  const name = (key) => (key.id === null ? t(`none_${by}`) : by === "source" ? sourceName(key.id) : key.name ?? `#${key.id}`);
  return html`<section class="report-panel report-table" data-group=${by}>
    <h2>${t(`by_${by}`)}</h2>
    ${body.groups.length === 0 ? html`<p class="empty">${t("noData")}</p>` : html`<div class="table-scroll" tabindex="0" role="region" aria-label=${t(`by_${by}`)}><table>
      <thead><tr><th>${t(`group_${by}`)}</th>${columns.map(([m, s]) => html`<th key=${`${m}${s}`} title=${data.definitions[m]?.definition || ""}>
        ${t(`m_${m}`)}${s !== "value" ? ` · ${s}` : ""}</th>`)}</tr></thead>
      <tbody>${body.groups.map((g) => html`<tr key=${String(g.key.id)}><td>${name(g.key)}</td>
        ${columns.map(([m, s]) => html`<td key=${`${m}${s}`}>${shown(pick(g.metrics, m, s), data.definitions[m]?.kind)}</td>`)}</tr>`)}</tbody>
    </table></div>`}
  </section>`;
}

async function downloadCsv(token, query, delimiter) {
  const params = new URLSearchParams({ from: query.from, to: query.to, tz: query.tz, delimiter });
  if (query.channel) params.set("channel", query.channel);
  const reply = await fetch(`/api/v1/reports/dialogs?${params}`, { headers: { Authorization: `Bearer ${token}`, Accept: "text/csv" } });
  if (!reply.ok) throw new Error(`HTTP ${reply.status}`);
  const url = URL.createObjectURL(await reply.blob());
  const link = Object.assign(document.createElement("a"), { href: url, download: `dialogs-${query.from}-${query.to}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function ReportsPage({ state, api, toast }) {
  const [query, setQuery] = useState(() => {
    const tz = sessionStorage.getItem("hub.reports.tz") || zone();
    return { preset: "7d", tz, ...presetPeriod("7d", tz), channel: "", chart: ["cycles", "value"] };
  });
  const [data, setData] = useState(null);
  const [busy, setBusy] = useState(false);
  const [delimiter, setDelimiter] = useState(lang() === "ru" ? "semicolon" : "comma");
  // The channels to filter by: those the reports have named so far (listing channels is
  // an admin's; a supervisor sees the ones with conversations).
  const [channels, setChannels] = useState(new Map());
  useEffect(() => {
    const named = data?.groups.channel.groups.filter((g) => g.key.id !== null) || [];
    if (named.some((g) => !channels.has(g.key.id))) {
      setChannels(new Map([...channels, ...named.map((g) => [g.key.id, g.key.name])]));
    }
  }, [data]);
  useEffect(() => {
    let live = true;
    setBusy(true);
    loadReports(api, query).then((d) => { if (live) setData(d); })
      .catch((error) => toast(error.message)).finally(() => { if (live) setBusy(false); });
    return () => { live = false; };
  }, [query.from, query.to, query.tz, query.channel, query.chart.join(":")]);
  const change = (patch) => setQuery((q) => ({ ...q, ...patch }));
  const preset = (value) => change({ preset: value, ...(value === "custom" ? {} : presetPeriod(value, query.tz)) });
  // The zone field is not controlled: a reload that finishes while one types would put the
  // old zone back. It is read when left, or on Enter (the form's submit).
  const setZone = (tz) => {
    try { new Intl.DateTimeFormat("en", { timeZone: tz }); } catch { toast(t("badZone")); return; }
    sessionStorage.setItem("hub.reports.tz", tz);
    change({ tz, ...(query.preset === "custom" ? {} : presetPeriod(query.preset, tz)) });
  };
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  const csv = () => downloadCsv(state.token, query, delimiter).catch((error) => toast(error.message));
  return html`<main class="reports" aria-label=${t("reports")} aria-busy=${busy ? "true" : "false"}>
    <form class="report-controls" onSubmit=${(e) => { e.preventDefault(); setZone(e.target.elements.tz.value.trim()); }}>
      <label>${t("period")}<select name="preset" onChange=${(e) => preset(e.target.value)}>
        ${["today", "yesterday", "7d", "30d", "month", "custom"].map((p) => html`<option key=${p} value=${p} selected=${query.preset === p}>${t(`period_${p}`)}</option>`)}
      </select></label>
      <label>${t("fromDay")}<input type="date" name="from" value=${query.from} max=${query.to}
        onChange=${(e) => e.target.value && change({ preset: "custom", from: e.target.value })} /></label>
      <label>${t("toDay")}<input type="date" name="to" value=${query.to} min=${query.from}
        onChange=${(e) => e.target.value && change({ preset: "custom", to: e.target.value })} /></label>
      <label>${t("timeZone")}<input name="tz" list="report-zones" key=${query.tz} defaultValue=${query.tz}
        onChange=${(e) => setZone(e.target.value.trim())} /></label>
      <datalist id="report-zones">${zones.map((z) => html`<option key=${z} value=${z} />`)}</datalist>
      <label>${t("channelFilter")}<select name="channel" onChange=${(e) => change({ channel: e.target.value })}>
        <option value="" selected=${!query.channel}>${t("allChannels")}</option>
        ${[...channels].map(([id, name]) => html`<option key=${id} value=${String(id)} selected=${query.channel === String(id)}>${name ?? `#${id}`}</option>`)}
      </select></label>
      <div class="csv-download">
        <select aria-label=${t("csvDelimiter")} onChange=${(e) => setDelimiter(e.target.value)}>
          <option value="comma" selected=${delimiter === "comma"}>${t("csvComma")}</option>
          <option value="semicolon" selected=${delimiter === "semicolon"}>${t("csvSemicolon")}</option>
        </select>
        <button type="button" class="primary" onClick=${csv}>${t("downloadCsv")}</button>
      </div>
    </form>
    ${data ? html`
      <p class="report-period muted">${`${data.summary.period.from} — ${data.summary.period.to} (${data.summary.period.tz}) · ${t("previousPeriod")}: ${data.summary.previous.period.from} — ${data.summary.previous.period.to}`}</p>
      <${Cards} data=${data} />
      <div class="report-grid">
        <${Chart} data=${data} chart=${query.chart} setChart=${(chart) => change({ chart })} />
        <${Heatmap} data=${data} />
      </div>
      <${GroupTable} data=${data} by="operator" />
      <div class="report-grid">
        <${GroupTable} data=${data} by="channel" />
        <${GroupTable} data=${data} by="source" />
      </div>` : html`<p class="loading" role="status">…</p>`}
  </main>`;
}
