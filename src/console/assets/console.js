// klamm console: a small page over the JSON API under /api/ (docs/console.md).
// Every value reaches the document through textContent or an attribute,
// never as markup, so a record holding HTML is shown as text.
"use strict";

const app = () => document.getElementById("app");
const token = () => document.querySelector('meta[name="csrf-token"]').content;
let timer = null; // the overview's refresh
let writeEnabled = false; // console.write.enabled, read once at start

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "onclick" || k === "onsubmit" || k === "oninput" || k === "onchange") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(path) {
  const r = await fetch("/api/" + path, { headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) throw new Error((body.error || r.status) + ": " + (body.message || ""));
  return body;
}

async function post(path, body) {
  const r = await fetch("/api/" + path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": token() },
    body: JSON.stringify(body || {}),
  });
  const out = await r.json();
  if (!r.ok) throw new Error((out.error || r.status) + ": " + (out.message || ""));
  return out;
}

const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
function fmtBytes(n) {
  if (n === null || n === undefined) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function fmtDuration(ms) {
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + "d " : "") + (d || h ? h + "h " : "") + m + "m " + (s % 60) + "s";
}
const fmtTime = (ms) => (ms < 0 ? String(ms) : new Date(ms).toISOString().replace("T", " ").replace("Z", ""));
function shown(v) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "null");
  const text = v.encoding === "text" ? v.data : "base64:" + v.data;
  return v.truncated ? [text, el("span", { class: "muted" }, " … (" + fmtInt(v.size) + " bytes)")] : text;
}
const card = (label, value, id) => el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value", id }, value));
const topicHref = (t) => "#/topics/" + encodeURIComponent(t);
const groupHref = (g) => "#/groups/" + encodeURIComponent(g);

function table(id, columns, rows) {
  // columns: [label, key, {num, render}]
  const state = { key: null, desc: false };
  const tbody = el("tbody");
  const draw = () => {
    let data = rows;
    if (state.key) {
      const k = state.key;
      data = [...rows].sort((a, b) => (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : 0) * (state.desc ? -1 : 1));
    }
    const frag = document.createDocumentFragment();
    for (const r of data) {
      frag.append(el("tr", {}, columns.map(([, key, o]) => el("td", { class: o && o.num ? "num" : o && o.data ? "data" : null, "data-col": key },
        o && o.render ? o.render(r) : o && o.num ? fmtInt(r[key]) : r[key]))));
    }
    tbody.replaceChildren(frag);
  };
  const head = el("tr", {}, columns.map(([label, key, o]) => el("th", {
    class: (o && o.num ? "num " : "") + "sortable",
    onclick: () => { state.desc = state.key === key ? !state.desc : false; state.key = key; draw(); },
  }, label)));
  draw();
  return el("table", { id }, el("thead", {}, head), tbody);
}

function svgChart(values) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 300 80");
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(1, ...values);
  const pts = values.map((v, i) => `${(i / Math.max(1, values.length - 1)) * 300},${78 - (v / max) * 74}`).join(" ");
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts);
  svg.append(line);
  return svg;
}

// Rates from the overview's counters, sampled every 2 s, last 60 samples.
const samples = [];
function rates() {
  const out = { rin: [], bin: [], rout: [], bout: [] };
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i], s = Math.max(0.001, (b.t - a.t) / 1000);
    out.rin.push(Math.max(0, (b.o.produced_records_total - a.o.produced_records_total) / s));
    out.bin.push(Math.max(0, (b.o.produced_bytes_total - a.o.produced_bytes_total) / s));
    out.rout.push(Math.max(0, (b.o.fetched_records_total - a.o.fetched_records_total) / s));
    out.bout.push(Math.max(0, (b.o.fetched_bytes_total - a.o.fetched_bytes_total) / s));
  }
  return out;
}

async function overview() {
  const o = await api("overview");
  samples.push({ t: Date.now(), o });
  if (samples.length > 61) samples.shift();
  const r = rates();
  const last = (a) => (a.length ? a[a.length - 1] : 0);
  const chart = (title, values, fmt) => el("div", { class: "card chart" },
    el("div", { class: "label" }, title + ": " + fmt(last(values)) + "/s"), svgChart(values.length ? values : [0, 0]));
  app().replaceChildren(
    el("h1", {}, "Broker " + o.broker_id),
    el("div", { class: "cards" },
      card("Cluster id", o.cluster_id, "cluster-id"),
      card("Version", o.version),
      card("Uptime", fmtDuration(o.uptime_ms)),
      card("Topics", fmtInt(o.topics), "topic-count"),
      card("Partitions", fmtInt(o.partitions)),
      card("Consumer groups", fmtInt(o.groups), "group-count"),
      card("Log size", fmtBytes(o.log_size_bytes)),
      card("Disk usable / total", fmtBytes(o.log_dir_usable_bytes) + " / " + fmtBytes(o.log_dir_total_bytes)),
      card("Connections", fmtInt(o.connections_open))),
    el("div", { class: "charts" },
      chart("Produced records", r.rin, (v) => fmtInt(Math.round(v))),
      chart("Produced bytes", r.bin, fmtBytes),
      chart("Fetched records", r.rout, (v) => fmtInt(Math.round(v))),
      chart("Fetched bytes", r.bout, fmtBytes)),
    el("h2", {}, "Listeners"),
    table("listeners", [["Name", "name"], ["Protocol", "security_protocol"], ["Bound to", "bind"], ["Advertised", "advertised"]], o.listeners),
    el("h2", {}, "Data directory"),
    el("p", {}, el("code", {}, o.log_dir)));
  timer = setTimeout(route, 2000);
}

async function topics() {
  const { topics: list } = await api("topics");
  const filter = el("input", { type: "search", id: "topic-filter", placeholder: "Filter topics" });
  const internal = el("input", { type: "checkbox", id: "show-internal" });
  const holder = el("div");
  const draw = () => {
    const q = filter.value.toLowerCase();
    const rows = list.filter((t) => (internal.checked || !t.internal) && t.name.toLowerCase().includes(q));
    holder.replaceChildren(table("topics", [
      ["Topic", "name", { render: (t) => [el("a", { href: topicHref(t.name) }, t.name), t.internal ? [" ", el("span", { class: "tag" }, "internal")] : null] }],
      ["Partitions", "partitions", { num: true }],
      ["Records", "records", { num: true }],
      ["Size", "size_bytes", { num: true, render: (t) => fmtBytes(t.size_bytes) }],
      ["Retention ms", "retention_ms", { num: true }],
      ["Cleanup policy", "cleanup_policy"],
    ], rows));
  };
  filter.oninput = draw;
  internal.onchange = draw;
  draw();
  app().replaceChildren(el("h1", {}, "Topics"),
    el("div", { class: "toolbar" }, filter, el("label", {}, internal, " internal topics"), el("span", { class: "muted" }, list.length + " topics")),
    writeEnabled ? createTopicForm() : null, holder);
}

function status(msg, bad) { return el("span", { class: bad ? "error" : "ok", role: "status" }, msg); }

function createTopicForm() {
  const name = el("input", { name: "name", placeholder: "topic name", required: true, id: "new-topic-name" });
  const parts = el("input", { name: "partitions", type: "number", min: 1, value: 1, class: "w-6", id: "new-topic-partitions" });
  const configs = el("input", { name: "configs", placeholder: "retention.ms=86400000,…", id: "new-topic-configs" });
  const out = el("span");
  return el("form", { class: "inline", id: "create-topic", onsubmit: async (e) => {
    e.preventDefault();
    const cfg = {};
    for (const kv of configs.value.split(",").map((s) => s.trim()).filter(Boolean)) {
      const i = kv.indexOf("=");
      cfg[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? "" : kv.slice(i + 1);
    }
    try {
      await post("topics", { name: name.value, partitions: Number(parts.value), configs: cfg });
      location.hash = topicHref(name.value);
    } catch (err) { out.replaceChildren(status(err.message, true)); }
  } }, el("strong", {}, "Create topic"), name, "partitions", parts, configs, el("button", { class: "primary", type: "submit" }, "Create"), out);
}

async function topic(name) {
  const t = await api("topics/" + encodeURIComponent(name));
  const out = el("span");
  const del = writeEnabled ? el("button", { class: "danger", id: "delete-topic", onclick: async () => {
    if (!confirm("Delete topic " + name + " and all its records?")) return;
    try { await post("topics/" + encodeURIComponent(name) + "/delete"); location.hash = "#/topics"; }
    catch (err) { out.replaceChildren(status(err.message, true)); }
  } }, "Delete topic") : null;
  app().replaceChildren(
    el("h1", {}, "Topic ", t.name),
    el("div", { class: "toolbar" }, el("a", { href: topicHref(name) + "/messages", id: "browse-messages" }, "Browse messages"),
      el("span", { class: "muted" }, "id " + t.id), del, out),
    el("h2", {}, "Partitions (" + t.partitions.length + ")"),
    table("partitions", [
      ["Partition", "partition", { num: true, render: (p) => el("a", { href: topicHref(name) + "/messages?partition=" + p.partition }, p.partition) }],
      ["Start offset", "start_offset", { num: true }],
      ["End offset", "end_offset", { num: true }],
      ["Records", "records", { num: true }],
      ["Size", "size_bytes", { num: true, render: (p) => fmtBytes(p.size_bytes) }],
      ["Segments", "segments", { num: true }],
    ], t.partitions),
    el("h2", {}, "Configs"),
    table("configs", [["Name", "name"], ["Value", "value", { data: true }], ["Source", "source"]], t.configs));
}

async function messages(name, params) {
  const t = await api("topics/" + encodeURIComponent(name));
  const partition = params.get("partition") || "0";
  const q = new URLSearchParams({ partition, limit: params.get("limit") || "50" });
  if (params.get("offset")) q.set("offset", params.get("offset"));
  else q.set("from", params.get("from") || "beginning");
  const m = await api("topics/" + encodeURIComponent(name) + "/messages?" + q);
  const go = (p) => { const n = new URLSearchParams(p); location.hash = topicHref(name) + "/messages?" + n; };
  const sel = el("select", { id: "partition", onchange: () => go({ partition: sel.value }) },
    t.partitions.map((p) => el("option", { value: p.partition, selected: String(p.partition) === partition }, "partition " + p.partition)));
  const off = el("input", { type: "number", id: "offset", placeholder: "offset", class: "w-9", value: params.get("offset") || "" });
  const filter = el("input", { type: "search", id: "message-filter", placeholder: "Filter key or value" });
  const holder = el("div");
  const draw = () => {
    const f = filter.value;
    const text = (v) => (v ? v.data : "");
    const rows = m.records.filter((r) => !f || text(r.key).includes(f) || text(r.value).includes(f));
    holder.replaceChildren(table("messages", [
      ["Partition", "partition", { num: true }],
      ["Offset", "offset", { num: true }],
      ["Timestamp", "timestamp", { render: (r) => [fmtTime(r.timestamp), " ", el("span", { class: "tag" }, r.timestamp_type)] }],
      ["Key", "key", { data: true, render: (r) => shown(r.key) }],
      ["Value", "value", { data: true, render: (r) => shown(r.value) }],
      ["Headers", "headers", { data: true, render: (r) => r.headers.map((h) => [h.key, "=", shown(h.value), "\n"]) }],
    ], rows));
  };
  filter.oninput = draw;
  draw();
  app().replaceChildren(
    el("h1", {}, "Messages of ", el("a", { href: topicHref(name) }, name)),
    el("div", { class: "toolbar" }, sel,
      el("button", { id: "from-beginning", onclick: () => go({ partition, from: "beginning" }) }, "From beginning"),
      el("button", { id: "from-end", onclick: () => go({ partition, from: "end" }) }, "From end"),
      off, el("button", { id: "go-offset", onclick: () => go({ partition, offset: off.value }) }, "Go to offset"),
      m.next_offset < m.end_offset ? el("button", { id: "next-page", onclick: () => go({ partition, offset: m.next_offset }) }, "Next") : null,
      filter),
    el("p", { class: "muted" }, `Offsets ${m.start_offset} to ${m.end_offset}; showing ${m.records.length} from ${m.from_offset}.`),
    writeEnabled ? produceForm(name, t.partitions.length, partition) : null,
    holder);
}

function produceForm(name, count, partition) {
  const part = el("input", { type: "number", min: 0, max: count - 1, value: partition, class: "w-6", id: "produce-partition" });
  const key = el("input", { placeholder: "key (empty: null)", id: "produce-key" });
  const value = el("input", { placeholder: "value", id: "produce-value", class: "wide" });
  const headers = el("input", { placeholder: "h1=v1,h2=v2", id: "produce-headers" });
  const out = el("span");
  return el("form", { class: "inline", id: "produce", onsubmit: async (e) => {
    e.preventDefault();
    const hs = headers.value.split(",").map((s) => s.trim()).filter(Boolean).map((kv) => {
      const i = kv.indexOf("="); return { key: i < 0 ? kv : kv.slice(0, i), value: i < 0 ? "" : kv.slice(i + 1) };
    });
    try {
      const r = await post("topics/" + encodeURIComponent(name) + "/messages",
        { partition: Number(part.value), key: key.value === "" ? null : key.value, value: value.value, headers: hs });
      location.hash = topicHref(name) + "/messages?" + new URLSearchParams({ partition: r.partition, offset: r.offset });
    } catch (err) { out.replaceChildren(status(err.message, true)); }
  } }, el("strong", {}, "Produce"), "partition", part, key, value, headers, el("button", { class: "primary", type: "submit" }, "Send"), out);
}

async function groups() {
  const { groups: list } = await api("groups");
  app().replaceChildren(el("h1", {}, "Consumer groups"),
    list.length ? table("groups", [
      ["Group", "group_id", { render: (g) => el("a", { href: groupHref(g.group_id) }, g.group_id) }],
      ["Type", "type"], ["State", "state"], ["Protocol type", "protocol_type"],
      ["Members", "members", { num: true }],
      ["Partitions", "partitions", { num: true }],
      ["Total lag", "total_lag", { num: true }],
    ], list) : el("p", { class: "muted" }, "No consumer groups yet."));
}

async function group(id) {
  const g = await api("groups/" + encodeURIComponent(id));
  const assignment = (m) => (m.assignment || []).map((a) => a.topic + ": " + a.partitions.join(",")).join("\n");
  app().replaceChildren(
    el("h1", {}, "Group ", g.group_id),
    el("div", { class: "cards" }, card("State", g.state, "group-state"), card("Type", g.type), card("Protocol", g.protocol || "–"),
      card("Members", fmtInt(g.members.length)), card("Total lag", fmtInt(g.total_lag), "total-lag")),
    writeEnabled ? resetForm(g) : null,
    el("h2", {}, "Members"),
    g.members.length ? table("members", [["Member id", "member_id", { data: true }], ["Client id", "client_id"], ["Host", "client_host"],
      ["Assignment", "assignment", { data: true, render: assignment }]], g.members) : el("p", { class: "muted" }, "No members."),
    el("h2", {}, "Committed offsets"),
    table("group-offsets", [
      ["Topic", "topic", { render: (r) => el("a", { href: topicHref(r.topic) }, r.topic) }],
      ["Partition", "partition", { num: true }],
      ["Committed", "committed_offset", { num: true }],
      ["End offset", "end_offset", { num: true }],
      ["Lag", "lag", { num: true }],
    ], g.offsets));
}

function resetForm(g) {
  const topic = el("input", { placeholder: "topic (empty: all)", id: "reset-topic" });
  const to = el("select", { id: "reset-to" }, ["earliest", "latest", "offset"].map((v) => el("option", { value: v }, v)));
  const off = el("input", { type: "number", placeholder: "offset", class: "w-8", id: "reset-offset" });
  const out = el("span");
  return el("form", { class: "inline", id: "reset-offsets", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const body = { to: to.value, topic: topic.value || null };
      if (to.value === "offset") body.offset = Number(off.value);
      await post("groups/" + encodeURIComponent(g.group_id) + "/reset-offsets", body);
      route();
    } catch (err) { out.replaceChildren(status(err.message, true)); }
  } }, el("strong", {}, "Reset offsets"), topic, "to", to, off, el("button", { class: "primary", type: "submit" }, "Reset"),
  el("span", { class: "muted" }, "(only while the group is empty)"), out);
}

async function route() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query || "");
  const section = parts[0] || "overview";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.nav === section);
  try {
    if (!parts.length) await overview();
    else if (parts[0] === "topics" && parts.length === 1) await topics();
    else if (parts[0] === "topics" && parts.length === 2) await topic(parts[1]);
    else if (parts[0] === "topics" && parts[2] === "messages") await messages(parts[1], params);
    else if (parts[0] === "groups" && parts.length === 1) await groups();
    else if (parts[0] === "groups") await group(parts.slice(1).join("/"));
    else app().replaceChildren(el("p", { class: "error" }, "No such page."));
  } catch (err) {
    app().replaceChildren(el("p", { class: "error", id: "error" }, err.message));
  }
  document.body.dataset.loaded = location.hash || "#/";
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try {
    const o = await api("overview");
    writeEnabled = o.write_enabled;
    document.getElementById("mode").textContent = o.write_enabled ? "writes enabled" : "read-only";
  } catch (err) { /* the page shows the error */ }
  route();
});
