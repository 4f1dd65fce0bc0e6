(function () {
  const tenantId = JSON.parse(document.getElementById("dashboard-tenant").textContent);
  const apiUrl = "/api/v1/admin/registration-automation/dashboard" + (tenantId ? "?tenant=" + encodeURIComponent(tenantId) : "");
  const charts = {};
  const fmtMs = v => v == null ? "—" : (v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms");
  // Every value goes into the DOM as text (never HTML): tenants' error texts and URLs are data.
  const STATUS = {ok: "正常", down: "故障", degraded: "降级", unconfigured: "未配置", disabled: "已停用",
    circuit_open: "熔断", open: "熔断", closed: "关闭", half_open: "半开"};
  const label = v => (v != null && STATUS[v]) || (v == null ? "" : String(v));
  function cell(tag, text, cls, colspan) {
    const node = document.createElement(tag);
    node.textContent = text == null ? "" : String(text);
    if (cls) node.className = cls;
    if (colspan) node.colSpan = colspan;
    return node;
  }
  function fill(el, trs) { document.getElementById(el).replaceChildren(...trs); }
  function tr(...cells) { const row = document.createElement("tr"); row.append(...cells); return row; }
  const rows = (el, pairs) => fill(el, pairs.map(([k, v, cls]) => tr(cell("th", k), cell("td", v, cls))));
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
      {label: "成功", data: m.daily_trends.map(t => t.succeeded), backgroundColor: "#4caf50", stack: "runs"},
      {label: "失败", data: m.daily_trends.map(t => t.failed), backgroundColor: "#e53935", stack: "runs"},
      {label: "平均端到端 (ms)", type: "line", yAxisID: "ms", borderColor: "#1e88e5",
       data: m.daily_trends.map(t => t.average_response_time_ms), spanGaps: true}]},
      options: {maintainAspectRatio: false, animation: false, scales: {y: {beginAtZero: true, stacked: true},
        x: {stacked: true}, ms: {position: "right", beginAtZero: true, grid: {drawOnChartArea: false}}}}});
    chart("sourcesChart", {type: "doughnut", data: {labels: ["智能体", "模板"], datasets: [
      {data: [m.welcome_sources.agent, m.welcome_sources.template], backgroundColor: ["#7e57c2", "#ffb300"]}]},
      options: {maintainAspectRatio: false, animation: false}});
    const steps = Object.keys(m.steps);
    chart("steps", {type: "bar", data: {labels: steps.map(s => s.replace(/_/g, " ")), datasets: [
      {label: "尝试", data: steps.map(s => m.steps[s].attempts), backgroundColor: "#90caf9"},
      {label: "失败", data: steps.map(s => m.steps[s].failures), backgroundColor: "#ef5350"}]},
      options: {indexAxis: "y", maintainAspectRatio: false, animation: false}});
    const mcp = d.mcp_server_status;
    rows("mcp", [["状态", label(mcp.status), mcp.status], ["地址", mcp.url], ["延迟", fmtMs(mcp.latency_ms)],
      ["工具", (mcp.tools || []).join(", ")], ["调用（24 小时）", mcp.calls_24h], ["错误（24 小时）", mcp.errors_24h],
      ["错误", mcp.error || mcp.detail || ""]]);
    const a = d.dify_agent_status;
    rows("agent", [["状态", label(a.status), a.status], ["提供方", a.provider],
      ["熔断器", label(a.breaker.state), a.breaker.state === "open" ? "down" : "ok"],
      ["调用（24 小时）", a.calls], ["错误率", a.error_rate == null ? "—" : (a.error_rate * 100).toFixed(1) + "%"],
      ["平均延迟", fmtMs(a.average_latency_ms)], ["令牌", a.tokens.total], ["最近错误", a.last_error ? a.last_error.error : ""]]);
    const head = tr(cell("th", "时间"), cell("th", "内容"), cell("th", "错误"));
    const errors = d.recent_errors.length ? d.recent_errors.map(e => tr(
      cell("td", e.local_time || e.timestamp.slice(0, 19).replace("T", " ")),  // the tenant's clock
      cell("td", e.kind === "step" ? e.step + " #" + e.attempt + "（运行 " + e.run_id + "）" : e.provider + " " + e.purpose),
      cell("td", e.error, "failed"))) : [tr(cell("td", "暂无", "muted", 3))];
    fill("errors", [head, ...errors]);
    const h = d.system_health;
    rows("health", [["总体", label(h.status), h.status]].concat(Object.entries(h.checks).map(([k, c]) =>
      [k, label(c.status) + (c.error ? " — " + c.error : "") + "（" + c.duration_ms + " ms）", c.status === "ok" ? "ok" : "down"])));
    document.getElementById("updated").textContent = "更新于 " + new Date().toLocaleTimeString("zh-CN");
  }
  draw(JSON.parse(document.getElementById("dashboard-data").textContent));
  setInterval(() => fetch(apiUrl, {credentials: "same-origin"}).then(r => r.ok ? r.json() : null).then(draw)
    .catch(() => {}), 30000);
})();
