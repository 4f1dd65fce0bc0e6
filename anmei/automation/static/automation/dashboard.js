(function () {
  const tenantId = JSON.parse(document.getElementById("dashboard-tenant").textContent);
  const apiUrl = "/api/v1/admin/registration-automation/dashboard" + (tenantId ? "?tenant=" + encodeURIComponent(tenantId) : "");
  const charts = {};
  const fmtMs = v => v == null ? "—" : (v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms");
  const esc = s => String(s == null ? "" : s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const rows = (el, pairs) => { document.getElementById(el).innerHTML = pairs.map(([k, v, cls]) =>
      `<tr><th>${esc(k)}</th><td class="${cls || ""}">${esc(v)}</td></tr>`).join(""); };
  function chart(id, config) {
    if (charts[id]) { charts[id].data = config.data; charts[id].update(); return; }
    charts[id] = new Chart(document.getElementById(id), config);
  }
  function draw(d) {
    if (!d) return;
    const m = d.automation_metrics;
    document.getElementById("success_rate").textContent = m.success_rate == null ? "—" : (m.success_rate * 100).toFixed(1) + "%";
    document.getElementById("total").textContent = m.total_automations;
    document.getElementById("failed").textContent = m.failed;
    document.getElementById("stuck").textContent = m.stuck;
    document.getElementById("avg").textContent = fmtMs(m.average_response_time_ms);
    document.getElementById("p95").textContent = fmtMs(m.p95_response_time_ms);
    document.getElementById("sources").textContent = m.welcome_sources.agent + " / " + m.welcome_sources.template;
    const days = m.daily_trends.map(t => t.date.slice(5));
    chart("trend", {type: "bar", data: {labels: days, datasets: [
      {label: "succeeded", data: m.daily_trends.map(t => t.succeeded), backgroundColor: "#4caf50", stack: "runs"},
      {label: "failed", data: m.daily_trends.map(t => t.failed), backgroundColor: "#e53935", stack: "runs"},
      {label: "avg end-to-end (ms)", type: "line", yAxisID: "ms", borderColor: "#1e88e5",
       data: m.daily_trends.map(t => t.average_response_time_ms), spanGaps: true}]},
      options: {maintainAspectRatio: false, animation: false, scales: {y: {beginAtZero: true, stacked: true},
        x: {stacked: true}, ms: {position: "right", beginAtZero: true, grid: {drawOnChartArea: false}}}}});
    chart("sourcesChart", {type: "doughnut", data: {labels: ["agent", "template"], datasets: [
      {data: [m.welcome_sources.agent, m.welcome_sources.template], backgroundColor: ["#7e57c2", "#ffb300"]}]},
      options: {maintainAspectRatio: false, animation: false}});
    const steps = Object.keys(m.steps);
    chart("steps", {type: "bar", data: {labels: steps.map(s => s.replace(/_/g, " ")), datasets: [
      {label: "attempts", data: steps.map(s => m.steps[s].attempts), backgroundColor: "#90caf9"},
      {label: "failures", data: steps.map(s => m.steps[s].failures), backgroundColor: "#ef5350"}]},
      options: {indexAxis: "y", maintainAspectRatio: false, animation: false}});
    const mcp = d.mcp_server_status;
    rows("mcp", [["status", mcp.status, mcp.status], ["url", mcp.url], ["latency", fmtMs(mcp.latency_ms)],
      ["tools", (mcp.tools || []).join(", ")], ["calls (24 h)", mcp.calls_24h], ["errors (24 h)", mcp.errors_24h],
      ["error", mcp.error || mcp.detail || ""]]);
    const a = d.dify_agent_status;
    rows("agent", [["status", a.status, a.status], ["provider", a.provider], ["breaker", a.breaker.state, a.breaker.state === "open" ? "down" : "ok"],
      ["calls (24 h)", a.calls], ["error rate", a.error_rate == null ? "—" : (a.error_rate * 100).toFixed(1) + "%"],
      ["avg latency", fmtMs(a.average_latency_ms)], ["tokens", a.tokens.total], ["last error", a.last_error ? a.last_error.error : ""]]);
    document.getElementById("errors").innerHTML = "<tr><th>when</th><th>what</th><th>error</th></tr>" +
      (d.recent_errors.length ? d.recent_errors.map(e => `<tr><td>${esc(e.timestamp.slice(0, 19).replace("T", " "))}</td>` +
        `<td>${esc(e.kind === "step" ? e.step + " #" + e.attempt + " (run " + e.run_id + ")" : e.provider + " " + e.purpose)}</td>` +
        `<td class="failed">${esc(e.error)}</td></tr>`).join("") : '<tr><td colspan="3" class="muted">none</td></tr>');
    const h = d.system_health;
    rows("health", [["overall", h.status, h.status]].concat(Object.entries(h.checks).map(([k, c]) =>
      [k, c.status + (c.error ? " — " + c.error : "") + " (" + c.duration_ms + " ms)", c.status === "ok" ? "ok" : "down"])));
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  }
  draw(JSON.parse(document.getElementById("dashboard-data").textContent));
  setInterval(() => fetch(apiUrl, {credentials: "same-origin"}).then(r => r.ok ? r.json() : null).then(draw)
    .catch(() => {}), 30000);
})();
