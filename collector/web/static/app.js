// The command center's page: open alerts (live, from the alert stream), open faults with their
// repair deadlines, the devices, and the latest recordings, all from the collector's REST API.
// Plain DOM, no framework; every text from the API goes in through textContent.
"use strict";

const WORDS = JSON.parse(document.getElementById("words").textContent);
const t = (key) => WORDS[key] ?? key;
// The server's sentences (alert details, fault reasons) in this page's language (messages.js).
const CATALOGUE = JSON.parse(document.getElementById("catalogue").textContent);
const ZONE = CATALOGUE.timezone;
const SEVERITY_RANK = { critical: 0, high: 1, medium: 2, low: 3 };
const POLL_MS = 5000;
const LOCALE = document.documentElement.lang;
let devices = new Map();

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

function duration(seconds) {
  const s = Math.abs(seconds);
  if (s < 60) return `${Math.round(s)} ${t("seconds")}`;
  if (s < 3600) return `${Math.round(s / 60)} ${t("minutes")}`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} ${t("hours")}`;
  return `${(s / 86400).toFixed(1)} ${t("days")}`;
}

// A time in the collector's configured zone (not the browser's); the header says which zone.
function stamp(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(LOCALE, {
    timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", hour12: false,
  });
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString(LOCALE, { timeZone: ZONE, hour12: false });
}

const say = CustosMessages.renderer(CATALOGUE, stamp);

// How a room is named in a sentence: its registry name with the device id (collector.messages.place).
function place(deviceId, site, room) {
  const name = devices.get(deviceId)?.name;
  if (name) return deviceId ? `${name} (${deviceId})` : name;
  return `${site || "?"} / ${room || "?"} (${deviceId || "?"})`;
}

function ago(iso) {
  if (!iso) return "—";
  return `${duration((Date.now() - Date.parse(iso)) / 1000)}${LOCALE === "en" ? " " : ""}${t("ago")}`;
}

function deadline(iso, done) {
  if (!iso) return el("span", {}, "—");
  const left = (Date.parse(iso) - Date.now()) / 1000;
  if (done) return el("span", { class: "muted" }, stamp(iso));
  if (left < 0) return el("span", { class: "overdue", title: stamp(iso) }, `${t("overdue")} ${duration(left)}`);
  return el("span", { class: left < 900 ? "soon" : "", title: stamp(iso) }, `${t("left")} ${duration(left)}`);
}

// A rule this page has no words for (a newer collector) keeps the collector's own title.
function ruleTitle(alert) {
  const key = `rule_${alert.rule}`;
  return key in WORDS ? t(key) : alert.title;
}

function roomOf(deviceId, room) {
  const device = devices.get(deviceId);
  return device?.name || room || deviceId;
}

function fill(sectionId, nodes) {
  const body = document.querySelector(`#${sectionId} .body`);
  body.replaceChildren(...(nodes.length ? nodes : [el("p", { class: "empty" }, body.dataset.empty)]));
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  const token = sessionStorage.getItem("custos_token");
  if (token) headers.Authorization = `Bearer ${token}`;
  let response = await fetch(path, { ...options, headers });
  if (response.status === 401 && options.method && options.method !== "GET") {
    const entered = window.prompt(t("ask_token"));
    if (!entered) throw new Error(t("ask_token"));
    sessionStorage.setItem("custos_token", entered);
    headers.Authorization = `Bearer ${entered}`;
    response = await fetch(path, { ...options, headers });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body?.error?.message || `${response.status}`);
  return body;
}

async function acknowledge(alert) {
  let who = localStorage.getItem("custos_operator");
  if (!who) {
    who = window.prompt(t("ask_name"));
    if (!who) return;
    localStorage.setItem("custos_operator", who);
  }
  try {
    await api(`/api/v1/alerts/${alert.id}/ack`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ by: who }),
    });
  } catch (error) {
    window.alert(`${t("failed")}: ${error.message}`);
  }
  refreshAlerts();
}

function alertDetail(alert) {
  return say(alert.message, place(alert.device_id, alert.site, alert.room)) ?? alert.detail;
}

function faultReason(fault) {
  return say(fault.reason_message, place(fault.device_id, fault.site, fault.room)) ?? (fault.reason || fault.type);
}

function alertStatus(alert) {
  const parts = [t(`state_${alert.state}`)];
  if (alert.level) parts.push(`${t("level")} ${alert.level}`);
  if (alert.occurrences > 1) parts.push(`${alert.occurrences} ${t("times")}`);
  return parts.join(" · ");
}

async function refreshAlerts() {
  const { alerts } = await api("/api/v1/alerts?state=open&limit=200");
  alerts.sort(
    (a, b) =>
      (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9) ||
      Date.parse(b.raised_at) - Date.parse(a.raised_at),
  );
  fill(
    "alerts",
    alerts.map((alert) =>
      el(
        "article",
        { class: `alert ${alert.severity} ${alert.state}` },
        el("span", { class: "badge" }, t(`severity_${alert.severity}`)),
        el(
          "div",
          { class: "what" },
          el("strong", {}, ruleTitle(alert)),
          el("span", { class: "where" }, roomOf(alert.device_id, alert.room)),
          el("small", { title: alert.detail }, alertDetail(alert)),
        ),
        el(
          "div",
          { class: "when" },
          el("span", { title: stamp(alert.raised_at) }, ago(alert.raised_at)),
          el("small", {}, alertStatus(alert)),
        ),
        alert.state === "raised"
          ? el("button", { onclick: () => acknowledge(alert) }, t("ack"))
          : el("span", { class: "muted" }, alert.acknowledged_by || ""),
      ),
    ),
  );
}

async function refreshDevices() {
  const { devices: list } = await api("/api/v1/devices");
  devices = new Map(list.map((d) => [d.device_id, d]));
  fill("devices", [
    ...(list.length
      ? [
          el(
            "table",
            {},
            el("tr", {}, ...["col_room", "col_device", "col_connection", "col_heartbeat"].map((k) => el("th", {}, t(k)))),
            ...list.map((d) =>
              el(
                "tr",
                {},
                el("td", {}, d.name || d.room),
                el("td", { class: "mono" }, d.device_id),
                el("td", { class: "nowrap" }, el("span", { class: `dot ${d.connection}` }), t(`connection_${d.connection}`)),
                el("td", { class: "nowrap", title: stamp(d.last_heartbeat_at) }, ago(d.last_heartbeat_at)),
              ),
            ),
          ),
        ]
      : []),
  ]);
}

async function refreshFaults() {
  const { faults } = await api("/api/v1/faults?state=open&limit=200");
  fill("faults", faults.length
    ? [
        el(
          "table",
          {},
          el("tr", {}, ...["col_room", "col_component", "col_reason", "col_opened", "col_respond_by", "col_restore_by", "col_state"].map((k) => el("th", {}, t(k)))),
          ...faults.map((f) =>
            el(
              "tr",
              {},
              el("td", {}, roomOf(f.device_id, f.room)),
              el("td", {}, `${t(`kind_${f.kind}`)} ${f.component || ""}`),
              el("td", {}, faultReason(f)),
              el("td", { class: "nowrap", title: stamp(f.opened_at) }, ago(f.opened_at)),
              el("td", { class: "nowrap" }, deadline(f.respond_by, Boolean(f.acknowledged_at))),
              el("td", { class: "nowrap" }, deadline(f.restore_by, false)),
              el("td", { class: "nowrap" }, t(`state_${f.state}`)),
            ),
          ),
        ),
      ]
    : []);
}

function play(segment) {
  const dialog = document.getElementById("player");
  const video = dialog.querySelector("video");
  const audio = dialog.querySelector("audio");
  const url = `/api/v1/segments/${encodeURIComponent(segment.device_id)}/${encodeURIComponent(segment.stream)}/${segment.seq}/play`;
  const [show, hide] = segment.kind === "audio" ? [audio, video] : [video, audio];
  hide.hidden = true;
  hide.removeAttribute("src");
  show.hidden = false;
  show.src = url;
  dialog.showModal();
}

async function refreshRecordings() {
  const since = new Date(Date.now() - 15 * 60 * 1000).toISOString();
  const { segments } = await api(`/api/v1/segments?state=uploaded&since=${encodeURIComponent(since)}&limit=2000`);
  const latest = segments.filter((s) => s.kind === "video").slice(-12).reverse();
  fill("recordings", latest.length
    ? [
        el(
          "table",
          {},
          el("tr", {}, ...["col_room", "col_stream", "col_time", ""].map((k) => el("th", {}, k ? t(k) : ""))),
          ...latest.map((s) =>
            el(
              "tr",
              {},
              el("td", {}, roomOf(s.device_id, s.room)),
              el("td", { class: "mono" }, `${s.stream} #${s.seq}`),
              el("td", { class: "nowrap" }, clock(s.start_at)),
              el("td", {}, el("button", { onclick: () => play(s) }, t("play"))),
            ),
          ),
        ),
      ]
    : []);
}

function listen() {
  const state = document.getElementById("stream-state");
  const stream = new EventSource("/api/v1/alerts/stream");
  let pending = null;
  const soon = () => {
    clearTimeout(pending);
    pending = setTimeout(() => refreshAlerts().catch(console.error), 100);
  };
  stream.onopen = () => {
    state.textContent = t("live");
    state.className = "stream-state live";
  };
  stream.onerror = () => {
    state.textContent = t("reconnecting");
    state.className = "stream-state down";
  };
  stream.onmessage = soon;
  stream.addEventListener("alert", soon);
  stream.addEventListener("snapshot", soon);
}

async function poll() {
  for (const refresh of [refreshDevices, refreshAlerts, refreshFaults, refreshRecordings]) {
    try {
      await refresh();
    } catch (error) {
      console.error(refresh.name, error);
    }
  }
}

poll();
setInterval(poll, POLL_MS);
listen();
document.getElementById("player").addEventListener("close", (event) => {
  for (const media of event.target.querySelectorAll("video, audio")) {
    media.pause();
    media.removeAttribute("src");
  }
});
