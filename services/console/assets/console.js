// Applies the live feed to the open alert list, so new and changed alerts show without a reload. Rows are
// built with textContent only: alert text comes from outside and must never become markup.
(() => {
  "use strict";
  const table = document.getElementById("alerts");
  const live = document.getElementById("live");
  if (!table || !live || !window.EventSource) return;
  const rows = table.tBodies[0];
  const want = table.dataset;
  const matches = (a) =>
    (!want.severity || want.severity === "all" || a.severity === want.severity) &&
    (!want.rule || a.rule === want.rule) &&
    (!want.status || want.status === "all" || a.status === want.status);
  const pad = (n) => String(n).padStart(2, "0");
  // Macau time (UTC+8, no daylight saving), as the server renders it.
  const macau = (ms) => {
    const d = new Date(ms + 8 * 3600 * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  };
  const cell = (text, className) => {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  };
  const row = (a) => {
    const tr = document.createElement("tr");
    tr.dataset.alertId = a.id;
    tr.dataset.status = a.status;
    tr.className = "fresh";
    const badge = document.createElement("span");
    badge.className = "sev sev-" + a.severity;
    badge.textContent = a.severity;
    const link = document.createElement("a");
    link.href = "/alerts/" + encodeURIComponent(a.id);
    link.textContent = a.message;
    const severity = document.createElement("td");
    severity.append(badge);
    const message = document.createElement("td");
    message.append(link);
    tr.append(severity, cell(a.rule), cell(a.status), cell(String(a.event_count), "num"),
      cell(macau(a.last_seen_ms)), message);
    return tr;
  };
  const show = (state, text) => {
    live.dataset.live = state;
    live.textContent = "Live updates: " + text;
  };
  const source = new EventSource("/alerts/stream");
  source.onopen = () => show("open", "on");
  source.onerror = () => source.readyState === EventSource.CLOSED
    ? show("closed", "off — reload the page")
    : show("reconnecting", "reconnecting…");
  source.addEventListener("alert", (event) => {
    const alert = JSON.parse(event.data);
    const old = Array.from(rows.rows).find((r) => r.dataset.alertId === alert.id);
    if (!matches(alert)) {
      if (old) old.remove();
      return;
    }
    if (old) old.replaceWith(row(alert));
    else rows.prepend(row(alert));
    const empty = rows.querySelector("tr.empty");
    if (empty) empty.remove();
  });
  // Sent when this page fell behind and missed updates.
  source.addEventListener("resync", () => location.reload());
})();
