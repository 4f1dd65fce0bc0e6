/* /admin/stats/: draws the JSON feed with Chart.js. Every value goes into the DOM as text. */
(function () {
  "use strict";
  const root = document.getElementById("stats-root");
  const WEEKDAYS = ["一", "二", "三", "四", "五", "六", "日"];
  const charts = {};
  const $ = (id) => document.getElementById(id);
  const text = (id, value) => { $(id).textContent = value == null ? "—" : String(value); };
  const secs = (v) => v == null ? "—" : (v >= 3600 ? (v / 3600).toFixed(1) + " h" : v >= 60 ? (v / 60).toFixed(1) + " min" : v + " s");
  const pct = (v) => v == null ? "—" : (v * 100).toFixed(1) + "%";

  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
    charts[id] = new Chart($(id), config);
  }

  function table(id, header, rows) {
    const el = $(id);
    el.replaceChildren();
    const head = el.insertRow();
    header.forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
    rows.forEach((r) => { const tr = el.insertRow(); r.forEach((v) => { tr.insertCell().textContent = v == null ? "—" : String(v); }); });
  }

  function heatmap(cells) {
    const el = $("heatmap");
    el.replaceChildren();
    const max = Math.max(1, ...cells.map((c) => c.count));
    const head = el.insertRow();
    head.appendChild(document.createElement("th"));
    for (let h = 0; h < 24; h++) { const th = document.createElement("th"); th.textContent = String(h); head.appendChild(th); }
    for (let d = 0; d < 7; d++) {
      const tr = el.insertRow();
      const th = document.createElement("th"); th.textContent = "周" + WEEKDAYS[d]; tr.appendChild(th);
      for (let h = 0; h < 24; h++) {
        const n = cells[d * 24 + h].count;
        const td = tr.insertCell();
        td.title = `周${WEEKDAYS[d]} ${h}:00 — ${n}`;
        td.style.backgroundColor = `rgba(38, 75, 93, ${(n / max).toFixed(3)})`;
      }
    }
  }

  function draw(data) {
    const o = data.overview;
    text("as-of", o.as_of ? "数据截至 " + new Date(o.as_of).toLocaleString("zh-CN") : "尚未汇总");
    text("customers-total", o.customers.total);
    text("customers-split", `新客 ${o.customers.new} · 回访 ${o.customers.returning}`);
    text("conversations-total", `${o.conversations.total} / ${o.conversations.valid}`);
    text("conversations-split", `仅机器人 ${o.conversations.bot_only} · 转人工 ${o.conversations.transferred_to_human}`);
    text("resolution-rate", pct(o.one_time_resolution_rate));
    text("first-response", `${secs(o.first_response.avg_s)} / ${secs(o.first_response.p50_s)} / ${secs(o.first_response.p90_s)}`);
    text("handle-time", secs(o.handle_time.avg_s));
    text("durations", `机器人 ${secs(o.session_duration.bot_avg_s)} · 人工 ${secs(o.session_duration.human_avg_s)}`);
    text("csat", o.csat.avg == null ? "—" : o.csat.avg + " / 5");
    text("csat-count", `${o.csat.count} 条评价`);

    const labels = data.trends.conversations.map((p) => p.t);
    chart("trend-chart", { type: "line", data: { labels, datasets: [
      { label: "会话", data: data.trends.conversations.map((p) => p.value), borderColor: "#264b5d" },
      { label: "有效会话", data: data.trends.valid_conversations.map((p) => p.value), borderColor: "#3e9bcd" },
      { label: "客户", data: data.trends.customers.map((p) => p.value), borderColor: "#e39b34" },
    ] } });
    chart("channel-chart", { type: "pie", data: { labels: o.channels.map((c) => c.channel),
      datasets: [{ data: o.channels.map((c) => c.count) }] } });
    chart("consultant-chart", { type: "bar", data: { labels: o.consultants.map((c) => c.name || "#" + c.id), datasets: [
      { label: "会话数", data: o.consultants.map((c) => c.conversations), backgroundColor: "#264b5d", yAxisID: "y" },
      { label: "首次响应(秒)", data: o.consultants.map((c) => c.first_response_avg_s), backgroundColor: "#3e9bcd", yAxisID: "seconds" },
      { label: "满意度", data: o.consultants.map((c) => c.csat_avg), backgroundColor: "#1a7f37", yAxisID: "csat" },
    ] }, options: { scales: {
      y: { position: "left", beginAtZero: true, ticks: { precision: 0 } },
      seconds: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } },
      csat: { position: "right", min: 0, max: 5, grid: { drawOnChartArea: false } },
    } } });
    chart("words-chart", { type: "bar", data: { labels: o.hot_words.map((w) => w.word),
      datasets: [{ label: "热词", data: o.hot_words.map((w) => w.count), backgroundColor: "#e39b34" }] },
      options: { indexAxis: "y" } });
    chart("csat-chart", { type: "line", data: { labels, datasets: [
      { label: "满意度", data: data.trends.csat_avg.map((p) => p.value), borderColor: "#1a7f37", spanGaps: true },
    ] }, options: { scales: { y: { min: 0, max: 5 } } } });
    heatmap(o.busy_heatmap);
    // Words, questions, keyword hits and registrations are counted for the whole clinic: under a
    // consultant or channel filter the page says so instead of showing empty panels.
    const query = new URLSearchParams(location.search);
    const filtered = !!(query.get("consultant") || query.get("channel"));
    table("bot-table", ["指标", "数值"], [
      ["自动回复", o.bot.auto_replies], ["转人工", o.bot.transfers],
      ...(filtered ? [["关键词命中", "全院指标，不按顾问或渠道区分"]] : o.bot.keyword_hits.map((k) => ["关键词：" + k.keyword, k.count])),
    ]);
    table("questions-table", ["问题", "次数"], o.hot_questions.map((q) => [q.question, q.count]));
    const wholeClinic = "全院统计，不按顾问或渠道区分：清除顾问、渠道筛选后查看";
    const minutes = root.dataset.rollupMinutes || "5";
    const updated = o.as_of ? new Date(o.as_of).toLocaleTimeString("zh-CN", { hour: "2-digit", minute: "2-digit" }) : null;
    const cadence = `每 ${minutes} 分钟随统计汇总更新` + (updated ? `，当前数据截至 ${updated}` : "");
    const termsNote = filtered ? wholeClinic : (o.hot_words.length ? cadence : `所选日期还没有热词；${cadence}`);
    text("words-note", termsNote);
    text("questions-note", filtered ? wholeClinic : (o.hot_questions.length ? cadence : `所选日期还没有热门问题；${cadence}`));
    const reg = o.registration_conversion;
    const bh = o.business_hours;
    table("more-table", ["指标", "数值"], [
      ["回复时长 平均（" + o.reply_time.count + " 次）", secs(o.reply_time.avg_s)],
      ["认领时长 平均 / 新客", secs(o.claim_time.avg_s) + " / " + secs(o.claim_time.new_customer_avg_s)],
      ["注册→7日内首条消息", reg.registered == null ? "全院指标，不按顾问或渠道区分" : `${reg.converted} / ${reg.registered}（${pct(reg.rate)}）`],
      ["顾问间转接", o.transfers_between_consultants],
      ["已结束会话", o.session_duration.ended],
      ...(bh ? [
        ["营业时间内 会话 / 首次响应", `${bh.in.conversations} / ${secs(bh.in.first_response_avg_s)}`],
        ["营业时间外 会话 / 首次响应", `${bh.out.conversations} / ${secs(bh.out.first_response_avg_s)}`],
      ] : []),
    ]);
    if (data.tenants) {
      $("tenants-panel").hidden = false;
      table("tenants-table", ["租户", "会话", "客户消息", "首次响应(秒)", "满意度"],
        data.tenants.map((t) => [t.name, t.conversations, t.customer_messages, t.first_response_avg_s, t.csat_avg]));
    }
    root.dataset.ready = "1";
  }

  fetch(root.dataset.feed, { credentials: "same-origin" })
    .then((r) => r.json().then((body) => ({ ok: r.ok, body })))
    .then(({ ok, body }) => {
      if (!ok) { const e = $("error"); e.hidden = false; e.textContent = body.error ? body.error.message : "error"; root.dataset.ready = "error"; return; }
      draw(body);
    })
    .catch((err) => { const e = $("error"); e.hidden = false; e.textContent = String(err); root.dataset.ready = "error"; });
})();
