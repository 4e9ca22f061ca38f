// The Sluice console: one page over ksqlDB's REST API, Kafka Connect's and /console/api.
"use strict";

const REFRESH_MS = 2000;
const HISTORY_KEY = "sluice.sql.history";
const HISTORY_SIZE = 50;

// ---- helpers ---------------------------------------------------------------------------------

/** An element with attributes (`on…` ones become listeners) and children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value);
  }
  for (const child of children.flat()) el.append(child instanceof Node ? child : String(child));
  return el;
}

class ApiError extends Error {
  constructor(message, body) {
    super(message);
    this.body = body;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!response.ok) {
    const message = (body && body.message) || (typeof body === "string" && body) || `${response.status} ${response.statusText}`;
    throw new ApiError(message, body);
  }
  return body;
}

function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function ksql(statements) {
  return post("/ksql", { ksql: statements, streamsProperties: {} });
}

const number = (n) => (n === null || n === undefined ? "" : Number(n).toLocaleString("en-US"));
const rate = (r) => (r === null || r === undefined ? "" : `${r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString("en-US")}/s`);
const bytes = (n) => {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(1)} ${units[unit]}`;
};
const time = (ms) => (ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").replace("Z", ""));
const stateBadge = (state) => h("span", { class: `state ${state}` }, state);
const errorBox = (error) => h("div", { class: "error" }, error.message || String(error));

/** A value shown as indented JSON when it is JSON, else as it is. */
function pretty(text) {
  if (text === null || text === undefined) return h("span", { class: "muted" }, "null");
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed === "object" && parsed !== null) return h("pre", {}, JSON.stringify(parsed, null, 2));
  } catch { /* not JSON */ }
  return h("pre", {}, text);
}

function table(headers, rows, attrs = {}) {
  return h("table", attrs,
    h("thead", {}, h("tr", {}, headers.map((c) => h("th", { class: c.endsWith("#") ? "num" : null }, c.replace(/#$/, ""))))),
    h("tbody", {}, rows));
}

/** Turns cumulative counts into per-second rates between two reads. */
class Rates {
  constructor() { this.last = new Map(); }
  of(key, count) {
    const now = performance.now();
    const before = this.last.get(key);
    this.last.set(key, { count, now });
    if (!before || count === null || count === undefined) return null;
    const seconds = (now - before.now) / 1000;
    return seconds > 0 ? Math.max(0, (count - before.count) / seconds) : null;
  }
}

// ---- routing ---------------------------------------------------------------------------------

const views = {};
let stopView = () => {};

/** Re-runs `draw` every REFRESH_MS while the view is shown. */
function every(draw) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try { await draw(); } finally { if (!stopped) timer = setTimeout(run, REFRESH_MS); }
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

function route() {
  stopView();
  stopView = () => {};
  const [name, ...rest] = (location.hash.slice(1) || "flow").split("/");
  const arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  for (const link of document.querySelectorAll("nav a")) link.classList.toggle("active", link.dataset.view === name);
  const main = document.getElementById("view");
  main.replaceChildren();
  const view = views[name] || views.flow;
  const stop = view(main, arg);
  if (typeof stop === "function") stopView = stop;
}

// ---- flow ------------------------------------------------------------------------------------

const NODE_W = 184;
const NODE_H = 44;
const COLUMN_GAP = 60;
const ROW_GAP = 22;

/** Columns by longest path from a node without inputs; rows ordered by their inputs' rows. */
function layout(nodes, edges) {
  const inputs = new Map(nodes.map((n) => [n.id, []]));
  for (const e of edges) if (inputs.has(e.to) && inputs.has(e.from)) inputs.get(e.to).push(e.from);
  const column = new Map();
  const visiting = new Set();
  const columnOf = (id) => {
    if (column.has(id)) return column.get(id);
    if (visiting.has(id)) return 0;
    visiting.add(id);
    const c = Math.max(-1, ...inputs.get(id).map(columnOf)) + 1;
    visiting.delete(id);
    column.set(id, c);
    return c;
  };
  nodes.forEach((n) => columnOf(n.id));
  const columns = [];
  for (const n of nodes) (columns[column.get(n.id)] ||= []).push(n);
  const row = new Map();
  for (const members of columns) {
    if (!members) continue;
    const weight = (n) => {
      const rows = inputs.get(n.id).map((i) => row.get(i)).filter((r) => r !== undefined);
      return rows.length ? rows.reduce((a, b) => a + b, 0) / rows.length : 0;
    };
    members.sort((a, b) => weight(a) - weight(b) || a.name.localeCompare(b.name));
    members.forEach((n, i) => row.set(n.id, i));
  }
  const position = new Map(nodes.map((n) => [n.id, {
    x: 10 + column.get(n.id) * (NODE_W + COLUMN_GAP),
    y: 10 + row.get(n.id) * (NODE_H + ROW_GAP),
  }]));
  const height = Math.max(1, ...columns.map((c) => (c ? c.length : 0))) * (NODE_H + ROW_GAP) + 20;
  const width = columns.length * (NODE_W + COLUMN_GAP) + 20;
  return { position, width, height };
}

function nodeLink(node) {
  switch (node.kind) {
    case "topic": return `#topics/${encodeURIComponent(node.name)}`;
    case "stream": case "table": return `#sources/${encodeURIComponent(node.name)}`;
    case "query": return `#queries/${encodeURIComponent(node.name)}`;
    case "connector": return `#connectors/${encodeURIComponent(node.name)}`;
    default: return null;
  }
}

views.flow = (main) => {
  const rates = new Rates();
  const graph = h("div", { id: "flow-graph" });
  const status = h("div", { class: "muted" });
  main.append(h("h2", {}, "Flow"), status, graph);
  return every(async () => {
    let flow;
    try { flow = await api("/console/api/flow"); } catch (e) { status.replaceChildren(errorBox(e)); return; }
    status.replaceChildren(flow.nodes.length ? "Records per second on each edge, from the last two reads." :
      "Nothing runs yet: declare a stream in the SQL view.");
    const { position, width, height } = layout(flow.nodes, flow.edges);
    // A graph wider than the screen is scaled down to fit it.
    const drawing = svg("svg", { viewBox: `0 0 ${width} ${height}`, style: `width: 100%; max-width: ${width}px` });
    for (const e of flow.edges) {
      const from = position.get(e.from);
      const to = position.get(e.to);
      if (!from || !to) continue;
      const [x1, y1, x2, y2] = [from.x + NODE_W, from.y + NODE_H / 2, to.x, to.y + NODE_H / 2];
      const bend = Math.max(30, (x2 - x1) / 2);
      const perSecond = rates.of(`${e.from}>${e.to}`, e.records);
      drawing.append(svg("g", { class: `edge${perSecond > 0 ? " moving" : ""}`, "data-from": e.from, "data-to": e.to },
        svg("path", { d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}` }),
        svg("text", { x: x2 - 6, y: y2 - 5, "text-anchor": "end" }, e.records === null ? "" : rate(perSecond ?? 0))));
    }
    for (const n of flow.nodes) {
      const p = position.get(n.id);
      const failing = n.state === "ERROR" || n.state === "FAILED";
      const erring = !failing && n.errors > 0;
      const label = n.name.length > 23 ? `${n.name.slice(0, 22)}…` : n.name;
      const subtitle = n.state ? `${n.kind} · ${n.state}${n.errors ? ` · ${n.errors} errors` : ""}` : n.kind;
      const link = nodeLink(n);
      drawing.append(svg("g", {
        class: `node ${n.kind}${failing ? " failing" : ""}${erring ? " erring" : ""}`,
        "data-id": n.id, "data-state": n.state || "", transform: `translate(${p.x},${p.y})`,
        onclick: () => { if (link) location.hash = link; },
      },
      svg("title", {}, n.name),
      svg("rect", { width: NODE_W, height: NODE_H }),
      svg("text", { x: 8, y: 18 }, label),
      svg("text", { x: 8, y: 34, class: "kind" }, subtitle)));
    }
    graph.replaceChildren(drawing);
  });
};

// ---- topics ----------------------------------------------------------------------------------

views.topics = (main, name) => {
  const list = h("div", { class: "list", id: "topic-list" });
  const detail = h("div", { id: "topic-detail" });
  main.append(h("div", { class: "columns" }, h("div", {}, h("h2", {}, "Topics"), list), detail));
  api("/console/api/topics").then((topics) => {
    list.replaceChildren(...topics.map((t) => h("a", { href: `#topics/${encodeURIComponent(t.name)}`, class: t.name === name ? "active" : null },
      t.name, h("span", { class: "muted" }, ` · ${t.partitions}p · ${number(t.records)}`))));
    if (!topics.length) list.append(h("div", { class: "muted" }, "No topics."));
  }).catch((e) => list.replaceChildren(errorBox(e)));
  if (!name) {
    detail.append(h("p", { class: "muted" }, "Pick a topic to see its partitions, who reads it and its records."));
    return null;
  }
  return topicDetail(detail, name);
};

function topicDetail(detail, name) {
  const partitions = h("div");
  const records = h("div", { id: "records" });
  const from = h("select", { id: "browse-from" }, h("option", { value: "end" }, "Newest"), h("option", { value: "start" }, "Oldest"), h("option", { value: "offset" }, "From offset"));
  const offset = h("input", { id: "browse-offset", type: "number", min: 0, placeholder: "offset", style: "width:7rem" });
  const partition = h("select", { id: "browse-partition" }, h("option", { value: "" }, "All partitions"));
  const limit = h("input", { id: "browse-limit", type: "number", min: 1, max: 500, value: 50, style: "width:5rem", title: "records" });
  const filter = h("input", { id: "browse-filter", type: "search", placeholder: "filter text" });
  // Only the latest read shows its records: an earlier one answering late (a read after a
  // produce, say) must not replace a filtered read's.
  let reads = 0;
  const read = async () => {
    const mine = ++reads;
    const query = new URLSearchParams({ from: from.value, limit: limit.value || "50" });
    if (from.value === "offset") query.set("offset", offset.value || "0");
    if (partition.value !== "") query.set("partition", partition.value);
    if (filter.value) query.set("filter", filter.value);
    records.replaceChildren(h("p", { class: "muted" }, "Reading…"));
    try {
      const found = await api(`/console/api/topics/${encodeURIComponent(name)}/records?${query}`);
      if (mine !== reads) return;
      records.replaceChildren(found.length
        ? table(["Partition#", "Offset#", "Timestamp", "Key", "Value"], found.map((r) => h("tr", { class: "record" },
          h("td", { class: "num" }, r.partition), h("td", { class: "num" }, r.offset), h("td", { class: "mono" }, time(r.timestamp)),
          h("td", { class: "mono" }, r.key ?? h("span", { class: "muted" }, "null")), h("td", {}, pretty(r.value)))))
        : h("p", { class: "muted" }, "No records."));
    } catch (e) { if (mine === reads) records.replaceChildren(errorBox(e)); }
  };
  filter.addEventListener("keydown", (e) => { if (e.key === "Enter") read(); });

  const key = h("input", { id: "produce-key", placeholder: "key (optional)" });
  const value = h("textarea", { id: "produce-value", rows: 4, class: "editor", placeholder: "value", style: "min-height:5rem" });
  const target = h("select", { id: "produce-partition" }, h("option", { value: "" }, "Partitioner decides"));
  const produced = h("div", { id: "produce-result" });
  const produce = async () => {
    const record = { key: key.value === "" ? null : key.value, value: value.value };
    if (target.value !== "") record.partition = Number(target.value);
    try {
      const at = await post(`/console/api/topics/${encodeURIComponent(name)}/records`, record);
      produced.replaceChildren(h("span", { class: "notice" }, `Produced to partition ${at.partition} at offset ${at.offset}.`));
      read();
    } catch (e) { produced.replaceChildren(errorBox(e)); }
  };

  detail.append(h("h2", {}, name), partitions,
    h("h3", {}, "Records"),
    h("div", { class: "controls" }, from, offset, partition, limit, filter, h("button", { class: "primary", id: "browse-read", onclick: read }, "Read")),
    records,
    h("h3", {}, "Produce a record"),
    h("div", { class: "panel" }, h("div", { class: "controls" }, key, target), value,
      h("div", { class: "controls", style: "margin-top:.5rem" }, h("button", { class: "primary", id: "produce", onclick: produce }, "Produce"), produced)));

  let first = true;
  return every(async () => {
    let topic;
    try { topic = await api(`/console/api/topics/${encodeURIComponent(name)}`); } catch (e) { partitions.replaceChildren(errorBox(e)); return; }
    if (first) {
      first = false;
      for (const p of topic.partitions) {
        partition.append(h("option", { value: p.partition }, `Partition ${p.partition}`));
        target.append(h("option", { value: p.partition }, `Partition ${p.partition}`));
      }
      read();
    }
    partitions.replaceChildren(
      table(["Partition#", "First offset#", "Next offset#", "Records#"], topic.partitions.map((p) => h("tr", {},
        h("td", { class: "num" }, p.partition), h("td", { class: "num" }, number(p.low)), h("td", { class: "num" }, number(p.high)),
        h("td", { class: "num" }, number(p.high - p.low))))),
      h("h3", {}, "Readers' lag"),
      topic.readers.length
        ? table(["Reader", "Partition#", "Lag#"], topic.readers.map((r) => h("tr", {},
          h("td", {}, r.kind === "group" ? `consumer group ${r.name}`
            : h("a", { href: r.kind === "query" ? `#queries/${encodeURIComponent(r.name)}` : `#connectors/${encodeURIComponent(r.name)}` }, `${r.kind} ${r.name}`)),
          h("td", { class: "num" }, r.partition), h("td", { class: "num" }, number(r.lag)))))
        : h("p", { class: "muted" }, "No query, connector or consumer group reads this topic."),
      topic.groupsError ? h("p", { class: "muted" }, topic.groupsError) : null);
  });
}

// ---- streams and tables ----------------------------------------------------------------------

views.sources = (main, name) => {
  const list = h("div", { class: "list", id: "source-list" });
  const detail = h("div", { id: "source-detail" });
  main.append(h("div", { class: "columns" }, h("div", {}, h("h2", {}, "Streams & tables"), list), detail));
  ksql("SHOW STREAMS; SHOW TABLES;").then((answers) => {
    const sources = answers.flatMap((a) => a.streams || a.tables || []);
    list.replaceChildren(...sources.map((s) => h("a", { href: `#sources/${encodeURIComponent(s.name)}`, class: s.name === name ? "active" : null },
      s.name, h("span", { class: "muted" }, ` · ${s.type.toLowerCase()}`))));
    if (!sources.length) list.append(h("div", { class: "muted" }, "No streams or tables."));
  }).catch((e) => list.replaceChildren(errorBox(e)));
  if (!name) {
    detail.append(h("p", { class: "muted" }, "Pick a stream or table to see its schema, topic and queries."));
    return null;
  }
  ksql(`DESCRIBE \`${name.replace(/`/g, "``")}\` EXTENDED;`).then(([answer]) => {
    const s = answer.sourceDescription;
    const queryLinks = (queries) => (queries.length
      ? h("ul", {}, queries.map((q) => h("li", {}, h("a", { href: `#queries/${encodeURIComponent(q.id)}` }, q.id), " ", h("code", {}, q.queryString))))
      : h("p", { class: "muted" }, "None."));
    const fieldType = (f) => `${f.schema.type}${f.type === "KEY" ? " (key)" : ""}`;
    detail.replaceChildren(h("h2", {}, `${s.type.toLowerCase()} ${s.name}`),
      h("p", {}, "Topic ", h("a", { href: `#topics/${encodeURIComponent(s.topic)}` }, s.topic),
        ` · key ${s.keyFormat} · value ${s.valueFormat}${s.partitions ? ` · ${s.partitions} partitions` : ""}`),
      h("h3", {}, "Schema"),
      table(["Column", "Type"], s.fields.map((f) => h("tr", {}, h("td", { class: "mono" }, f.name), h("td", { class: "mono" }, fieldType(f))))),
      h("h3", {}, "Queries writing it"), queryLinks(s.writeQueries || []),
      h("h3", {}, "Queries reading it"), queryLinks(s.readQueries || []),
      s.statement ? h("div", {}, h("h3", {}, "Statement"), h("pre", {}, s.statement)) : null);
  }).catch((e) => detail.replaceChildren(errorBox(e)));
  return null;
};

// ---- queries ---------------------------------------------------------------------------------

views.queries = (main, selected) => {
  const rates = new Rates();
  const body = h("div", { id: "queries" });
  const detail = h("div", { id: "query-detail" });
  const notice = h("div");
  main.append(h("h2", {}, "Queries"), notice, body, detail);
  const control = async (statement) => {
    try {
      const [answer] = await ksql(statement);
      notice.replaceChildren(h("p", { class: "notice" }, (answer.commandStatus && answer.commandStatus.message) || "Done."));
    } catch (e) { notice.replaceChildren(errorBox(e)); }
  };
  let shownRecord = null;
  return every(async () => {
    let queries;
    try { queries = await api("/console/api/queries"); } catch (e) { body.replaceChildren(errorBox(e)); return; }
    if (!queries.length) { body.replaceChildren(h("p", { class: "muted" }, "No persistent queries run.")); return; }
    body.replaceChildren(table(["Query", "State", "In#", "In/s#", "Out#", "Out/s#", "Errors#", "Lag#", ""], queries.map((q) => {
      const lag = q.lag.reduce((sum, l) => sum + l.records, 0);
      const paused = q.state === "PAUSED";
      return h("tr", { id: `query-${q.id}`, class: q.id === selected ? "selected" : null },
        h("td", {}, h("a", { href: `#queries/${encodeURIComponent(q.id)}` }, q.id), h("div", { class: "muted mono" }, `${q.source} → ${q.sink}`)),
        h("td", {}, stateBadge(q.state)),
        h("td", { class: "num" }, number(q.recordsIn)), h("td", { class: "num" }, rate(rates.of(`${q.id}:in`, q.recordsIn))),
        h("td", { class: "num" }, number(q.recordsOut)), h("td", { class: "num" }, rate(rates.of(`${q.id}:out`, q.recordsOut))),
        h("td", { class: "num" }, number(q.errors)), h("td", { class: "num" }, number(lag)),
        h("td", {},
          h("button", { onclick: () => control(`${paused ? "RESUME" : "PAUSE"} ${q.id};`), "data-action": paused ? "resume" : "pause" }, paused ? "Resume" : "Pause"), " ",
          h("button", { onclick: () => { if (confirm(`Terminate ${q.id}?`)) control(`TERMINATE ${q.id};`); }, "data-action": "terminate" }, "Terminate")));
    })));
    const query = queries.find((q) => q.id === selected);
    if (!query) { detail.replaceChildren(); return; }
    const last = query.lastError;
    const parts = [h("h3", {}, query.id), h("pre", {}, query.statement)];
    if (query.cause) parts.push(h("p", { class: "error" }, `Failed: ${query.cause}`));
    if (query.lag.length) {
      parts.push(h("h3", {}, "Lag"), table(["Topic", "Partition#", "Records behind#"], query.lag.map((l) => h("tr", {},
        h("td", {}, l.topic), h("td", { class: "num" }, l.partition), h("td", { class: "num" }, number(l.records))))));
    }
    parts.push(h("h3", {}, `Processing errors: ${number(query.errors)}`));
    if (last) {
      const where = `${last.topic}/${last.partition}@${last.offset}`;
      const record = h("div", { id: "last-bad-record" }, shownRecord && shownRecord.where === where ? shownRecord.node : h("p", { class: "muted" }, "Reading the record…"));
      parts.push(h("div", { class: "panel", id: "last-error" },
        h("div", { class: "error" }, `Last error (${last.kind}): ${last.message}`),
        h("p", {}, "Record at topic ", h("a", { href: `#topics/${encodeURIComponent(last.topic)}` }, last.topic), `, partition ${last.partition}, offset ${last.offset}:`),
        record));
      if (!shownRecord || shownRecord.where !== where) {
        const params = new URLSearchParams({ from: "offset", offset: last.offset, partition: last.partition, limit: 1 });
        api(`/console/api/topics/${encodeURIComponent(last.topic)}/records?${params}`).then(([found]) => {
          const node = found ? h("div", {}, h("div", { class: "muted mono" }, `key ${found.key ?? "null"} · ${time(found.timestamp)}`), pretty(found.value))
            : h("p", { class: "muted" }, "The record is no longer in the topic.");
          shownRecord = { where, node };
          record.replaceChildren(node);
        }).catch((e) => record.replaceChildren(errorBox(e)));
      }
    } else {
      parts.push(h("p", { class: "muted" }, "None."));
    }
    detail.replaceChildren(h("div", { class: "panel" }, parts));
  });
};

// ---- SQL editor ------------------------------------------------------------------------------

function pastStatements() {
  try { return JSON.parse(localStorage.getItem(HISTORY_KEY)) || []; } catch { return []; }
}

function remember(statement) {
  const kept = [statement, ...pastStatements().filter((s) => s !== statement)].slice(0, HISTORY_SIZE);
  localStorage.setItem(HISTORY_KEY, JSON.stringify(kept));
}

/** Where a ksqlDB error message says the statement went wrong: `line L:C`. */
function errorPosition(message) {
  const found = /line (\d+):(\d+)/.exec(message || "");
  return found ? { line: Number(found[1]), column: Number(found[2]) } : null;
}

/** One `/ksql` answer, as a table where it lists things, else its message or JSON. */
function entity(answer) {
  const lists = ["streams", "tables", "queries", "topics", "connectors", "properties", "functions", "variables", "types"];
  for (const key of lists) {
    const rows = answer[key];
    if (Array.isArray(rows)) {
      if (!rows.length) return h("p", { class: "muted" }, `No ${key}.`);
      const columns = Object.keys(rows[0]).filter((c) => typeof rows[0][c] !== "object" || rows[0][c] === null);
      return table(columns, rows.map((r) => h("tr", {}, columns.map((c) => h("td", { class: "mono" }, r[c] ?? "")))));
    }
  }
  if (answer.commandStatus) return h("p", { class: "notice" }, answer.commandStatus.message);
  if (answer["@type"] === "warning_entity") return h("p", { class: "muted" }, answer.message);
  return h("pre", {}, JSON.stringify(answer, null, 2));
}

views.sql = (main) => {
  const editor = h("textarea", { id: "sql-editor", class: "editor", spellcheck: "false", placeholder: "CREATE STREAM … ;  SELECT * FROM … EMIT CHANGES;" });
  editor.value = sessionStorage.getItem("sluice.sql.draft") || "";
  editor.addEventListener("input", () => sessionStorage.setItem("sluice.sql.draft", editor.value));
  const results = h("div", { id: "sql-results" });
  const runButton = h("button", { class: "primary", id: "sql-run" }, "Run");
  const stopButton = h("button", { id: "sql-stop", disabled: true }, "Stop");
  const past = h("ul", { class: "history", id: "sql-history" });
  let running = null;

  const showHistory = () => past.replaceChildren(...pastStatements().map((s) => h("li", { title: s, onclick: () => { editor.value = s; editor.focus(); } }, s)));
  const showError = (message, text) => {
    const at = errorPosition(message);
    const parts = [h("div", { class: "error", id: "sql-error" }, message)];
    if (at) {
      const lines = text.split("\n");
      const line = lines[at.line - 1];
      if (line !== undefined) {
        parts.push(h("div", { class: "muted", id: "sql-error-position" }, `At line ${at.line}, column ${at.column}:`),
          h("pre", { class: "caret" }, `${line}\n${" ".repeat(Math.max(0, at.column - 1))}^`));
        const start = lines.slice(0, at.line - 1).reduce((n, l) => n + l.length + 1, 0) + at.column - 1;
        editor.focus();
        editor.setSelectionRange(start, Math.min(start + 1, editor.value.length));
      }
    }
    results.replaceChildren(...parts);
  };

  const stream = async (text) => {
    const controller = new AbortController();
    const rows = h("tbody");
    const head = h("thead");
    const info = h("div", { class: "muted", id: "sql-query-state" }, "Starting…");
    results.replaceChildren(info, h("table", { id: "sql-rows" }, head, rows));
    running = { controller, id: null, stopped: false };
    stopButton.disabled = false;
    let count = 0;
    try {
      const response = await fetch("/query-stream", {
        method: "POST", signal: controller.signal,
        headers: { "Content-Type": "application/vnd.ksqlapi.delimited.v1", Accept: "application/vnd.ksqlapi.delimited.v1" },
        body: JSON.stringify({ sql: text, properties: {} }),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        showError(body.message || `${response.status} ${response.statusText}`, text);
        return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, newline).trim();
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const item = JSON.parse(line);
          if (Array.isArray(item)) {
            count += 1;
            rows.append(h("tr", { class: "row" }, item.map((v) => h("td", { class: "mono" }, v === null ? "null" : typeof v === "object" ? JSON.stringify(v) : String(v)))));
            info.textContent = `${running && running.id ? `Query ${running.id}: ` : ""}${count} row${count === 1 ? "" : "s"}`;
          } else if (item.columnNames) {
            running.id = item.queryId || null;
            head.replaceChildren(h("tr", {}, item.columnNames.map((c) => h("th", {}, c))));
            info.textContent = `${item.queryId ? `Query ${item.queryId}: ` : ""}waiting for rows…`;
          } else if (item.message) {
            results.append(errorBox(item));
          }
        }
      }
      info.textContent = `${running.stopped ? "Stopped after" : "Done:"} ${count} row${count === 1 ? "" : "s"}.`;
    } catch (e) {
      if (e.name === "AbortError") info.textContent = `Stopped after ${count} row${count === 1 ? "" : "s"}.`;
      else results.append(errorBox(e));
    } finally {
      running = null;
      stopButton.disabled = true;
    }
  };

  const run = async () => {
    const text = editor.value.trim();
    if (!text || running) return;
    remember(text);
    showHistory();
    if (/^(SELECT|PRINT)\b/i.test(text.replace(/^(--[^\n]*\n|\s)+/, ""))) { await stream(editor.value); return; }
    results.replaceChildren(h("p", { class: "muted" }, "Running…"));
    try {
      const answers = await ksql(editor.value);
      results.replaceChildren(...answers.map((a) => h("div", { class: "panel" }, h("div", { class: "muted mono" }, a.statementText || ""), entity(a))));
    } catch (e) {
      showError(e.message, editor.value);
      if (e.body && Array.isArray(e.body.entities) && e.body.entities.length) {
        results.append(...e.body.entities.map((a) => h("div", { class: "panel" }, entity(a))));
      }
    }
  };

  const stop = async () => {
    if (!running) return;
    const { controller, id } = running;
    running.stopped = true;
    controller.abort();
    if (id) await post("/close-query", { queryId: id }).catch(() => {});
  };

  runButton.addEventListener("click", run);
  stopButton.addEventListener("click", stop);
  editor.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); } });
  showHistory();
  main.append(h("h2", {}, "SQL"),
    h("div", { class: "columns" },
      h("div", {}, h("h3", {}, "History"), past),
      h("div", {}, editor, h("div", { class: "controls", style: "margin-top:.5rem" }, runButton, stopButton,
        h("span", { class: "muted" }, "Ctrl+Enter runs. SELECT … EMIT CHANGES streams rows until stopped.")), results)));
  return () => { stop(); };
};

// ---- connectors ------------------------------------------------------------------------------

views.connectors = (main, name) => {
  const list = h("div", { class: "list", id: "connector-list" });
  const detail = h("div", { id: "connector-detail" });
  main.append(h("div", { class: "columns" }, h("div", {}, h("h2", {}, "Connectors"), list), detail));
  const showList = async () => {
    try {
      const connectors = await api("/connectors?expand=status");
      list.replaceChildren(...Object.entries(connectors).map(([n, c]) => h("a", { href: `#connectors/${encodeURIComponent(n)}`, class: n === name ? "active" : null },
        n, " ", stateBadge(c.status.tasks[0] ? c.status.tasks[0].state : c.status.connector.state))));
      if (!Object.keys(connectors).length) list.append(h("div", { class: "muted" }, "No connectors. Create one with CREATE SINK CONNECTOR in the SQL view."));
    } catch (e) { list.replaceChildren(errorBox(e)); }
  };
  if (!name) {
    detail.append(h("p", { class: "muted" }, "Pick a connector to see its tasks, progress per partition and the files it wrote."));
    return every(showList);
  }
  const status = h("div");
  const files = h("div", { id: "connector-files" });
  const preview = h("div", { id: "file-preview" });
  const showFiles = async () => {
    try {
      const tree = await api(`/console/api/connectors/${encodeURIComponent(name)}/files`);
      files.replaceChildren(h("p", { class: "muted mono" }, `${tree.store}${tree.root}${tree.truncated ? " (only the first entries)" : ""}`), fileTree(tree, name, preview));
    } catch (e) { files.replaceChildren(e.body && e.body.error_code === 40400 ? h("p", { class: "muted" }, "A source connector writes no files.") : errorBox(e)); }
  };
  detail.append(h("h2", {}, name), status,
    h("h3", {}, "Files ", h("button", { id: "refresh-files", onclick: showFiles }, "Refresh")), files, preview);
  showFiles();
  return every(async () => {
    await showList();
    try {
      const [s, config] = await Promise.all([
        api(`/connectors/${encodeURIComponent(name)}/status`),
        api(`/connectors/${encodeURIComponent(name)}/config`),
      ]);
      status.replaceChildren(
        h("p", {}, `${s.type} connector · `, stateBadge(s.connector.state), " ",
          h("button", { onclick: () => post(`/connectors/${encodeURIComponent(name)}/restart`, {}).catch(() => {}) }, "Restart")),
        table(["Task", "State", "Worker", "Trace"], s.tasks.map((t) => h("tr", {},
          h("td", {}, t.id), h("td", {}, stateBadge(t.state)), h("td", { class: "mono" }, t.worker_id), h("td", { class: "error" }, t.trace || "")))),
        s.progress && s.progress.length
          ? table(["Topic", "Partition#", "Committed offset#", "Log end#", "Lag#", "Files#", "Bytes#", "Records#"], s.progress.map((p) => h("tr", {},
            h("td", {}, h("a", { href: `#topics/${encodeURIComponent(p.topic)}` }, p.topic)), h("td", { class: "num" }, p.partition),
            h("td", { class: "num" }, p.committedOffset ?? "none"), h("td", { class: "num" }, number(p.logEndOffset)), h("td", { class: "num" }, number(p.lag)),
            h("td", { class: "num" }, number(p.files)), h("td", { class: "num" }, bytes(p.bytes)), h("td", { class: "num" }, number(p.records)))))
          : h("p", { class: "muted" }, "No partition progress yet."),
        s.skippedRecords ? h("p", { class: "error" }, `${number(s.skippedRecords)} records skipped; the last: ${s.lastSkipped}`) : null,
        h("details", {}, h("summary", {}, "Config"), h("pre", {}, JSON.stringify(config, null, 2))));
    } catch (e) { status.replaceChildren(errorBox(e)); }
  });
};

/** The folders and files under a sink's topics.dir as a nested list; a file shows its first lines. */
function fileTree(tree, connector, preview) {
  const children = new Map();
  for (const entry of tree.entries) {
    const parent = entry.path.slice(0, entry.path.lastIndexOf("/"));
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(entry);
  }
  const render = (dir) => h("ul", { class: "tree" }, (children.get(dir) || []).map((entry) => {
    const label = entry.path.slice(entry.path.lastIndexOf("/") + 1);
    if (entry.dir) return h("li", { class: "dir", "data-path": entry.path }, h("span", {}, `${label}/`), render(entry.path));
    const show = async () => {
      preview.replaceChildren(h("p", { class: "muted" }, "Reading…"));
      try {
        const head = await api(`/console/api/connectors/${encodeURIComponent(connector)}/preview?path=${encodeURIComponent(entry.path)}`);
        preview.replaceChildren(h("h3", {}, label), h("pre", { id: "preview-lines" }, head.lines.join("\n")));
      } catch (e) { preview.replaceChildren(errorBox(e)); }
    };
    return h("li", { class: "file", "data-path": entry.path, onclick: show }, label, h("span", { class: "muted" }, ` · ${bytes(entry.bytes)}`));
  }));
  return tree.entries.length ? render(tree.root) : h("p", { class: "muted" }, "No files yet.");
}

// ---- start -----------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
api("/info").then((info) => {
  const server = info.KsqlServerInfo || {};
  document.getElementById("server").textContent = `${server.version || ""} · ${server.kafkaClusterId || ""} · ${server.serverStatus || ""}`;
}).catch(() => {});
route();
