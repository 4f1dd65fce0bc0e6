// The consultant console. State lives in plain maps; every render builds DOM nodes from text.
import {
  $, $$, ApiError, LiveSocket, addStrings, api, applyI18n, asrState, formatTime, h, logout, messageBubble, previewText, session, show, t,
  deliveryNode, sendUpload, toggleLang, uploadErrorText,
} from "./common.js";

addStrings({
  "app.title": ["顾问工作台", "Consultant console"],
  "auth.title": ["顾问登录", "Consultant log in"],
  "auth.staffOnly": ["仅限顾问和机构管理员登录", "Consultants and clinic admins only"],
  "presence.online": ["在线", "Online"],
  "presence.away": ["离开", "Away"],
  "search.placeholder": ["搜索消息 (Ctrl+K)", "Search messages (Ctrl+K)"],
  "search.anyone": ["全部发送者", "Any sender"],
  "search.none": ["没有找到消息", "No messages found"],
  "search.close": ["关闭搜索", "Close search"],
  "tab.mine": ["我的", "Mine"],
  "tab.waiting": ["待接入", "Waiting"],
  "tab.all": ["全部", "All"],
  "list.empty": ["暂无会话", "No conversations"],
  "chat.pick": ["选择左侧的会话开始接待", "Pick a conversation on the left"],
  "chat.placeholder": ["输入回复，Enter 发送，Shift+Enter 换行，/ 快捷回复", "Reply: Enter sends, Shift+Enter new line, / canned responses"],
  "nav.list": ["‹ 会话列表", "‹ Conversations"],
  "nav.panel": ["客户信息 ›", "Customer ›"],
  "nav.chat": ["‹ 返回会话", "‹ Back to the conversation"],
  "act.claim": ["接入", "Claim"],
  "act.accept": ["接受转接", "Accept"],
  "act.decline": ["拒绝转接", "Decline"],
  "act.transfer": ["转接", "Transfer"],
  "act.end": ["结束", "End"],
  "act.blacklist": ["拉黑", "Blacklist"],
  "act.open": ["查看", "Open"],
  "toast.newCustomer": ["新客户 {name} · 来自{channel}，等待接入", "New customer {name} via {channel} is waiting"],
  "toast.close": ["关闭 (Esc)", "Close (Esc)"],
  "toast.more": ["还有 {count} 条通知", "{count} more notifications"],
  "toast.expand": ["展开", "Show"],
  "toast.closeAll": ["全部关闭", "Close all"],
  "list.new": ["新", "New"],
  "toast.missedCustomer": ["断线期间有新客户注册，等待接入", "A customer registered while you were offline"],
  "toast.transferIn": ["{who} 将会话 #{id} 转接给您", "{who} transfers #{id} to you"],
  "toast.claimed": ["已接入会话 #{id}", "Claimed #{id}"],
  "toast.alert": ["系统告警：{message}", "Alert: {message}"],
  "race.lost": ["该会话已被 {who} 接入", "{who} already claimed this conversation"],
  "race.lostStatus": ["该会话当前状态为「{status}」，无法{action}", "This conversation is {status}: cannot {action}"],
  "event.claim": ["{who} 接入了会话", "{who} claimed the conversation"],
  "event.transfer": ["{who} 将会话转接给 {to}", "{who} transferred to {to}"],
  "event.accept": ["{who} 接受了转接", "{who} accepted the transfer"],
  "event.decline": ["{who} 拒绝了转接", "{who} declined the transfer"],
  "event.end": ["{who} 结束了会话", "{who} ended the conversation"],
  "event.timeout": ["会话因长时间无消息自动结束", "Ended after inactivity"],
  "event.created_by_automation": ["客户注册，系统自动创建会话", "Created on registration"],
  "event.other": ["{who}：{action}", "{who}: {action}"],
  "who.system": ["系统", "System"],
  "who.you": ["您", "You"],
  "who.customer": ["客户", "The customer"],
  "ai.title": ["AI 建议", "AI suggestions"],
  "ai.empty": ["客户发来消息后，这里会出现回复建议", "Suggestions appear when the customer writes"],
  "summary.title": ["会话小结", "Summary"],
  "summary.pending": ["小结生成中…", "Summary being written…"],
  "summary.failed": ["小结生成失败", "Summary failed"],
  "summary.main_issues": ["主要问题", "Main issues"],
  "summary.solution": ["解决方案", "Solution"],
  "summary.evaluation": ["评估", "Evaluation"],
  "summary.follow_up": ["后续跟进", "Follow-up"],
  "customer.title": ["客户信息", "Customer"],
  "customer.history": ["历史会话", "Previous conversations"],
  "customer.nickname": ["昵称", "Nickname"],
  "customer.username": ["账号", "Account"],
  "customer.source": ["来源", "Source"],
  "customer.registered": ["注册时间", "Registered"],
  "customer.blacklist": ["黑名单", "Blacklist"],
  "customer.blacklisted": ["已拉黑（{reason}）", "Blacklisted ({reason})"],
  "customer.notBlacklisted": ["否", "No"],
  "customer.bot": ["机器人", "Bot"],
  "customer.botAlive": ["{name} · 在线", "{name} · online"],
  "customer.botStale": ["{name} · 失联", "{name} · not responding"],
  "transfer.title": ["转接给在线顾问", "Transfer to an online consultant"],
  "transfer.none": ["暂无其他在线顾问", "No other consultant is online"],
  "transfer.to": ["转接给", "Transfer to"],
  "transfer.note": ["交接备注（可选，仅同事可见）", "Hand-off note (optional, staff only)"],
  "transfer.noteHint": ["如：客户关心热玛吉价格，已发报价单", "e.g. asked about Thermage prices, price list sent"],
  "transfer.noteShown": ["备注：{note}", "Note: {note}"],
  "role.admin": ["管理员", "admin"],
  "blacklist.title": ["拉黑该客户", "Blacklist this customer"],
  "blacklist.reason": ["原因", "Reason"],
  "blacklist.expires": ["到期时间（可选）", "Expires (optional)"],
  "blacklist.done": ["已拉黑", "Blacklisted"],
  "canned.none": ["没有匹配的快捷回复（Enter 不会发送）", "No matching canned response (Enter sends nothing)"],
  "canned.manage": ["快捷回复", "Canned responses"],
  "canned.help": [
    "在回复框输入 / 加快捷码使用；客户消息含关键词时，它会出现在 AI 建议里",
    "Type / and the shortcode in the reply box; when a customer message has a keyword, it is suggested",
  ],
  "canned.new": ["新增快捷回复", "New canned response"],
  "canned.edit": ["编辑 /{shortcode}", "Edit /{shortcode}"],
  "canned.shortcode": ["快捷码", "Shortcode"],
  "canned.shortcodeHint": ["如 price（字母、数字、汉字、- 或 _）", "e.g. price (letters, digits, - or _)"],
  "canned.text": ["回复内容", "Reply text"],
  "canned.keywords": ["关键词", "Keywords"],
  "canned.keywordHint": ["输入关键词后按回车", "Type a keyword, press Enter"],
  "canned.removeKeyword": ["移除 {word}", "Remove {word}"],
  "canned.empty": ["还没有快捷回复", "No canned responses yet"],
  "canned.saved": ["已保存 /{shortcode}", "Saved /{shortcode}"],
  "canned.deleted": ["已删除 /{shortcode}", "Deleted /{shortcode}"],
  "canned.delete": ["删除", "Delete"],
  "canned.confirmDelete": ["确认删除", "Really delete"],
  "canned.taken": ["快捷码 /{shortcode} 已存在", "/{shortcode} exists already"],
  "canned.badShortcode": ["快捷码只能包含字母、数字、汉字、- 和 _", "Shortcodes take letters, digits, - and _ only"],
  "common.close": ["关闭", "Close"],
  "common.save": ["保存", "Save"],
  "common.edit": ["编辑", "Edit"],
  "help.shortcuts": [
    "快捷键：Alt+C 接入 · Alt+T 转接 · Alt+A 接受 · Alt+D 拒绝 · Alt+E 结束 · Alt+↑/↓ 切换会话 · Ctrl+K 搜索 · Esc 关闭",
    "Shortcuts: Alt+C claim · Alt+T transfer · Alt+A accept · Alt+D decline · Alt+E end · Alt+↑/↓ switch · Ctrl+K search · Esc close",
  ],
});

const state = {
  me: null,
  tab: "mine",
  conversations: new Map(), // id → conversation (API shape)
  previews: new Map(), // id → last message
  unread: new Map(), // id → count
  staff: new Map(), // id → {id, name, status}
  openId: null,
  messageIds: new Set(), // ids rendered in the open conversation
  eventIds: new Set(),
  oldestId: null,
  cursor: { message: null, event: null },
  canned: null,
  cannedIndex: 0,
  announced: new Set(), // conversation ids a new-customer toast was shown for
  fresh: new Set(), // waiting conversations announced and not opened yet: the list's "新" badge
  socket: null,
  refreshTimer: null,
};


// ---- helpers -------------------------------------------------------------------------------
const isStaffMsg = (m) => m.sender_type === "consultant" || m.sender_type === "bot";

function staffName(id) {
  if (!id) return t("who.system");
  if (state.me && id === state.me.id) return t("who.you");
  return state.staff.get(id)?.name || `#${id}`;
}

// Notifications: one per event, newest first, in the side column (never over the chat header's
// actions); each times out (hovering pauses it), Esc closes the newest, and past TOAST_LIMIT the
// older ones fold into one "more" row. What needs doing stays on the list as a badge.
const TOAST_LIMIT = 3;
const TOAST_TIMEOUT_MS = { info: 6000, error: 10000, "new-customer": 20000, transfer: 30000 };
let toastsExpanded = false;

function toast(text, { actions = [], kind = "info", timeout = undefined, conversationId = null, key = null } = {}) {
  const stack = $("#toasts");
  const existing = key && $$(".toast", stack).find((el) => el.dataset.key === key);
  if (existing) return existing;
  const box = h("div", { class: `toast ${kind}`, role: "status", dataset: { ...(conversationId ? { conversationId } : {}), ...(key ? { key } : {}) } });
  const content = Array.isArray(text) ? text : [text];
  box.append(h("div", { class: "toast-text" }, ...content));
  let timer = null;
  const close = () => {
    clearTimeout(timer);
    box.remove();
    layoutToasts();
  };
  box.close = close;
  for (const [label, fn, cls] of actions) {
    box.append(h("button", { type: "button", class: cls || "", onclick: () => { close(); fn(); } }, label));
  }
  box.append(h("button", { type: "button", class: "linkish close", "aria-label": t("toast.close"), title: t("toast.close"), onclick: close }, "×"));
  const ms = timeout === undefined ? TOAST_TIMEOUT_MS[kind] ?? TOAST_TIMEOUT_MS.info : timeout;
  const arm = () => {
    clearTimeout(timer);
    if (ms) timer = setTimeout(close, ms);
  };
  box.addEventListener("mouseenter", () => clearTimeout(timer));
  box.addEventListener("mouseleave", arm);
  arm();
  stack.prepend(box);
  layoutToasts();
  return box;
}

function layoutToasts() {
  const stack = $("#toasts");
  const boxes = $$(".toast", stack);
  if (boxes.length <= TOAST_LIMIT) toastsExpanded = false;
  boxes.forEach((box, index) => show(box, toastsExpanded || index < TOAST_LIMIT));
  let more = $(".toast-more", stack);
  const folded = toastsExpanded ? 0 : boxes.length - TOAST_LIMIT;
  if (folded <= 0) {
    more?.remove();
    return;
  }
  if (!more) {
    more = h("div", { class: "toast-more" });
    stack.append(more);
  }
  more.replaceChildren(
    h("span", { class: "toast-text" }, t("toast.more", { count: folded })),
    h("button", { type: "button", class: "linkish", onclick: () => { toastsExpanded = true; layoutToasts(); } }, t("toast.expand")),
    h("button", { type: "button", class: "linkish", onclick: closeAllToasts }, t("toast.closeAll")),
  );
}

function closeNewestToast() {
  const newest = $$("#toasts .toast").find((box) => !box.classList.contains("hidden"));
  newest?.close();
  return Boolean(newest);
}

function closeAllToasts() {
  for (const box of $$("#toasts .toast")) box.close();
}

const CHANNELS = { web: ["网页", "Web"], wechat: ["微信", "WeChat"], wecom: ["企业微信", "WeCom"], qq: ["QQ", "QQ"], dingtalk: ["钉钉", "DingTalk"], feishu: ["飞书", "Feishu"], lark: ["飞书", "Lark"], telegram: ["Telegram", "Telegram"] };

addStrings(Object.fromEntries(Object.entries(CHANNELS).map(([key, names]) => [`channel.${key}`, names])));

function channelName(channel) {
  const names = CHANNELS[channel];
  return names ? t(`channel.${channel}`) : channel || "—";
}

function beep() {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.05;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.15);
  } catch {
    /* sound is a nicety */
  }
}

function notifyBrowser(title, body) {
  if (!document.hidden || !("Notification" in window)) return;
  if (Notification.permission === "granted") new Notification(title, { body });
}

function showError(error) {
  toast(t("error.generic", { message: error.message || error }), { kind: "error" });
}

// ---- login / logout ------------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  $("#login-error").textContent = "";
  try {
    const result = await api("auth/login", { method: "POST", body: Object.fromEntries(form) });
    if (!["consultant", "admin"].includes(result.user.role)) {
      $("#login-error").textContent = t("auth.staffOnly");
      return;
    }
    session.set({ token: result.token, user: result.user, tenant: form.get("tenant") });
    start();
  } catch (error) {
    $("#login-error").textContent = error.message;
  }
}

function start() {
  const current = session.get();
  if (!current?.token) return;
  state.me = current.user;
  show($("#login-view"), false);
  show($("#app"));
  show($("#logout"));
  show($("#presence"));
  show($("#canned-manage"));
  $("#me").textContent = `${current.tenant} / ${current.user.username}`;
  if ("Notification" in window && Notification.permission === "default") Notification.requestPermission().catch(() => {});
  state.socket = new LiveSocket("/ws/console/", { onEvent: onEvent, onOpen: onSocketOpen, onState: setConnState });
  state.socket.connect();
}

function setConnState(value) {
  const el = $("#conn");
  el.dataset.state = value;
  if (value === "unauthorized") {
    session.clear();
    location.reload();
    return;
  }
  el.dataset.i18n = `conn.${value}`;
  el.textContent = t(el.dataset.i18n);
}

// On every (re)connect: ask for what was missed since our cursors, refresh lists and staff.
function onSocketOpen() {
  const { message, event } = state.cursor;
  state.socket.send({ type: "sync", since_message: message, since_event: event });
  state.socket.send({ type: "presence.list" });
  if ($("#presence").value === "away") state.socket.send({ type: "presence.set", status: "away" });
}

// ---- conversation lists --------------------------------------------------------------------
async function loadConversations() {
  const me = state.me.id;
  const queries = ["page_size=100", "status=waiting&page_size=100", `consultant=${me}&page_size=100`, "status=transferring&page_size=100"];
  try {
    const pages = await Promise.all(queries.map((q) => api(`conversations?${q}`)));
    for (const page of pages) for (const conversation of page.results) state.conversations.set(conversation.id, conversation);
    await loadPreviews([...state.conversations.keys()]);
  } catch (error) {
    showError(error);
  }
  renderList();
  if (state.openId) renderChatHead();
}

async function loadPreviews(ids) {
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100);
    if (!chunk.length) continue;
    try {
      const { results } = await api(`console/previews?ids=${chunk.join(",")}`);
      for (const message of results) state.previews.set(message.conversation_id, message);
    } catch {
      /* previews are a nicety */
    }
  }
}

function refreshSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(loadConversations, 150);
}

const inTab = {
  mine: (c) => (c.consultant === state.me.id && c.status !== "ended") || c.transfer_to === state.me.id,
  waiting: (c) => c.status === "waiting",
  all: () => true,
};

function sortKey(c) {
  return Date.parse(state.previews.get(c.id)?.created_at || c.last_message_at || c.updated_at || c.created_at) || 0;
}

function visibleConversations() {
  return [...state.conversations.values()].filter(inTab[state.tab]).sort((a, b) => sortKey(b) - sortKey(a) || b.id - a.id);
}

function renderList() {
  for (const tab of Object.keys(inTab)) {
    $(`[data-count="${tab}"]`).textContent = [...state.conversations.values()].filter(inTab[tab]).length;
  }
  for (const button of $$(".tab")) button.classList.toggle("active", button.dataset.tab === state.tab);
  const list = $("#conv-list");
  const items = visibleConversations().map((c) => {
    const unread = state.unread.get(c.id) || 0;
    const preview = state.previews.get(c.id);
    return h(
      "li",
      {
        class: `conv${c.id === state.openId ? " open" : ""}`,
        dataset: { conversationId: c.id, status: c.status },
        tabindex: 0,
        onclick: () => openConversation(c.id),
        onkeydown: (e) => e.key === "Enter" && openConversation(c.id),
      },
      h(
        "div",
        { class: "row" },
        h("span", { class: "name" }, c.customer_nickname),
        unread ? h("b", { class: "unread", "aria-label": "unread" }, String(unread)) : null,
        state.fresh.has(c.id) ? h("b", { class: "fresh", "aria-label": "new" }, t("list.new")) : null,
        h("span", { class: `badge s-${c.status}` }, t(`status.${c.status}`)),
      ),
      h(
        "div",
        { class: "row sub" },
        h("span", { class: "preview" }, preview ? previewText(preview) : ""),
        h("span", { class: "muted" }, `${channelName(c.channel)} · ${formatTime(preview?.created_at || c.updated_at)}`),
      ),
    );
  });
  list.replaceChildren(...(items.length ? items : [h("li", { class: "muted empty-list" }, t("list.empty"))]));
}

// ---- the open conversation -----------------------------------------------------------------
// On a narrow screen one pane shows at a time: list → conversation → customer panel.
function setView(view) {
  document.body.dataset.view = view;
}

async function openConversation(id) {
  state.openId = id;
  setView("chat");
  state.customerProfile = null;
  state.unread.delete(id);
  state.fresh.delete(id);
  state.messageIds = new Set();
  state.eventIds = new Set();
  state.oldestId = null;
  const timeline = $("#timeline");
  timeline.replaceChildren($("#load-older"));
  show($("#empty-chat"), false);
  show($("#chat"));
  show($("#chat-banner"), false);
  $("#suggestion-list").replaceChildren();
  show($("#suggestion-empty"));
  show($("#summary"), false);
  renderList();
  renderChatHead();
  const conversation = state.conversations.get(id);
  try {
    const [history, events] = await Promise.all([
      api(`console/conversations/${id}/history?limit=30`),
      api(`console/conversations/${id}/events`),
    ]);
    if (state.openId !== id) return;
    for (const message of history.results) addMessage(message, { scroll: false });
    for (const event of events.results) addEvent(event);
    state.oldestId = history.results[0]?.id ?? null;
    show($("#load-older"), history.has_more);
    timeline.scrollTop = timeline.scrollHeight;
  } catch (error) {
    showError(error);
  }
  if (conversation) loadCustomer(conversation.customer);
  if (conversation?.status === "ended") loadSummary(id);
  $("#composer-input").focus();
}

async function loadOlder() {
  const id = state.openId;
  if (!id || !state.oldestId) return;
  const timeline = $("#timeline");
  const before = timeline.scrollHeight;
  const page = await api(`console/conversations/${id}/history?limit=30&before=${state.oldestId}`);
  if (state.openId !== id) return;
  for (const message of page.results) addMessage(message, { scroll: false });
  state.oldestId = page.results[0]?.id ?? state.oldestId;
  show($("#load-older"), page.has_more);
  timeline.scrollTop = timeline.scrollHeight - before;
}

function timelineInsert(node, createdAt) {
  const timeline = $("#timeline");
  node.dataset.at = createdAt;
  const stamp = Date.parse(createdAt);
  const later = [...timeline.children].find((child) => child.dataset.at && Date.parse(child.dataset.at) > stamp);
  timeline.insertBefore(node, later || null);
}

function addMessage(message, { scroll = true } = {}) {
  if (state.messageIds.has(message.id)) return;
  state.messageIds.add(message.id);
  const mine = isStaffMsg(message);
  const label = message.sender_type === "consultant" ? staffName(message.sender_id) : t(`sender.${message.sender_type}`);
  timelineInsert(messageBubble(message, { mine, senderLabel: label, onAsrRetry: retryAsr, onDeliveryRetry: retryDelivery }), message.created_at);
  if (scroll) $("#timeline").scrollTop = $("#timeline").scrollHeight;
  const asr = asrState(message);
  if (message.type === "voice" && asr.taskId !== null && asr.text === undefined) loadAsr(message, asr.taskId);
}

// A voice message's transcript state comes from its ASR task (GET /api/v1/asr/tasks/<id>).
async function loadAsr(message, taskId) {
  try {
    const task = await api(`asr/tasks/${encodeURIComponent(taskId)}`);
    if (task.status === "success") onAsr({ type: "asr.result", conversation_id: message.conversation_id, message_id: message.id, asr_task_id: taskId, result: task.result });
    else if (task.status === "failed") onAsr({ type: "asr.result", conversation_id: message.conversation_id, message_id: message.id, asr_task_id: taskId, status: "failed", error: task.error });
  } catch {
    /* no ASR on this deployment: the bubble keeps its audio player */
  }
}

function eventText(event) {
  const who = event.actor_id ? staffName(event.actor_id) : t("who.system");
  const key = `event.${event.action}`;
  const to = staffName(event.details?.to_consultant || event.transfer_to_id);
  const note = event.details?.note ?? event.note;
  const text = ["claim", "transfer", "accept", "decline", "end", "timeout", "created_by_automation"].includes(event.action)
    ? t(key, { who, to })
    : t("event.other", { who, action: event.action });
  return note ? `${text}（${t("transfer.noteShown", { note })}）` : text;
}

function addEvent(event) {
  const key = event.id ?? event.event_id;
  if (key && state.eventIds.has(key)) return;
  if (key) state.eventIds.add(key);
  timelineInsert(h("div", { class: "system-event", dataset: { eventId: key || "" } }, eventText(event), " · ", formatTime(event.created_at || event.timestamp)), event.created_at || event.timestamp);
}

function renderChatHead() {
  const c = state.conversations.get(state.openId);
  if (!c) return;
  $("#chat-title").textContent = `#${c.id} ${c.customer_nickname}`;
  const badge = $("#chat-status");
  badge.textContent = t(`status.${c.status}`);
  badge.className = `badge s-${c.status}`;
  $("#chat-channel").textContent = channelName(c.channel);
  const me = state.me.id;
  const admin = state.me.role === "admin";
  const holder = c.consultant === me || admin;
  show($("#btn-claim"), c.status === "waiting");
  show($("#btn-accept"), c.status === "transferring" && c.transfer_to === me);
  show($("#btn-decline"), c.status === "transferring" && (c.transfer_to === me || c.consultant === me || admin));
  show($("#btn-transfer"), c.status === "active" && holder);
  show($("#btn-end"), c.status !== "ended" && (holder || c.status === "waiting"));
  // The blacklist blocks IM identities (platform + platform user id); admins only (API.md).
  const profile = state.customerProfile;
  show($("#btn-blacklist"), admin && profile?.id === c.customer && Boolean(profile.platform_user_id) && !profile.blacklisted);
  const canWrite = (c.status === "active" || c.status === "transferring") && holder;
  $("#composer-input").disabled = !canWrite;
  $("#send").disabled = !canWrite;
  $("#attach-image").disabled = !canWrite;
  $("#attach-file").disabled = !canWrite;
  show($("#composer"), c.status !== "ended");
}

function banner(text) {
  const el = $("#chat-banner");
  el.textContent = text;
  show(el, Boolean(text));
}

// ---- actions -------------------------------------------------------------------------------
async function transition(action, body) {
  const id = state.openId;
  if (!id) return null;
  try {
    const conversation = await api(`conversations/${id}/${action}`, { method: "POST", body: body || {} });
    state.conversations.set(conversation.id, conversation);
    banner("");
    renderList();
    renderChatHead();
    if (action === "end") loadSummary(id);
    return conversation;
  } catch (error) {
    await explainConflict(id, action, error);
    return null;
  }
}

// A 409 says what the conversation is now; for a lost claim race also say who won.
async function explainConflict(id, action, error) {
  if (!(error instanceof ApiError) || error.status !== 409) {
    showError(error);
    return;
  }
  const current = state.conversations.get(id);
  let fresh = null;
  try {
    const page = await api(`conversations?customer=${current.customer}&page_size=100`);
    fresh = page.results.find((c) => c.id === id) || null;
  } catch {
    /* fall back to the status the 409 carried */
  }
  if (fresh) state.conversations.set(id, fresh);
  const status = fresh?.status || error.details.status;
  if (action === "claim" && fresh?.consultant) banner(t("race.lost", { who: staffName(fresh.consultant) }));
  else banner(t("race.lostStatus", { status: t(`status.${status}`), action: t(`act.${action}`) }));
  renderList();
  renderChatHead();
}

async function claim(id) {
  if (id && id !== state.openId) await openConversation(id);
  const conversation = await transition("claim");
  if (conversation) toast(t("toast.claimed", { id: conversation.id }), { timeout: 3000 });
}

function openTransfer() {
  const c = state.conversations.get(state.openId);
  if (!c || c.status !== "active") return;
  state.socket.send({ type: "presence.list" });
  renderTransferTargets();
  $("#transfer-note").value = "";
  $("#transfer-dialog").showModal();
}

function renderTransferTargets() {
  const c = state.conversations.get(state.openId);
  const targets = [...state.staff.values()].filter((s) => s.status === "online" && s.id !== state.me.id && s.id !== c?.consultant);
  // display name first; the login name only where it tells two people apart
  const label = (s) => `${s.name}${s.name !== s.username ? ` (${s.username})` : ""}${s.role === "admin" ? ` · ${t("role.admin")}` : ""}`;
  $("#transfer-target").replaceChildren(...targets.map((s) => h("option", { value: s.id }, label(s))));
  show($("#transfer-target"), targets.length > 0);
  show($("#transfer-none"), targets.length === 0);
  $("#transfer-ok").disabled = targets.length === 0;
}

async function submitTransfer(event) {
  event.preventDefault();
  const target = Number($("#transfer-target").value);
  const note = $("#transfer-note").value.trim();
  $("#transfer-dialog").close();
  if (target) await transition("transfer", { to_consultant: target, ...(note ? { note } : {}) });
}

async function submitBlacklist(event) {
  event.preventDefault();
  $("#blacklist-dialog").close();
  const c = state.conversations.get(state.openId);
  const profile = state.customerProfile;
  if (!c || !profile) return;
  const expires = $("#blacklist-expires").value;
  try {
    await api("blacklist", {
      method: "POST",
      body: {
        platform: profile.source,
        user_id: profile.platform_user_id,
        reason: $("#blacklist-reason").value,
        ...(expires ? { expires_at: new Date(expires).toISOString() } : {}),
      },
    });
    toast(t("blacklist.done"), { timeout: 3000 });
    loadCustomer(c.customer);
  } catch (error) {
    showError(error);
  }
}

// A message to an IM customer changed delivery state (`message.updated`): redraw its line.
function onMessageUpdated(event) {
  const update = event.message;
  if (!update?.id || !update.delivery) return;
  const bubble = $(`#timeline .msg[data-message-id="${Number(update.id)}"]`);
  if (!bubble) return;
  const node = deliveryNode(update.id, update.delivery, retryDelivery);
  const old = bubble.querySelector(".delivery");
  if (old) old.replaceWith(node);
  else bubble.append(node);
}

async function retryDelivery(messageId) {
  try {
    const result = await api(`messages/${messageId}/retry-delivery`, { method: "POST" });
    // the pushed outcome may already be here: only a line still showing the failure turns pending
    const shown = $(`#timeline .msg[data-message-id="${Number(messageId)}"] .delivery`);
    if (!shown || shown.dataset.status === "failed") onMessageUpdated({ message: { id: messageId, delivery: result.delivery } });
  } catch (error) {
    showError(error);
  }
}

async function retryAsr(taskId) {
  try {
    await api(`asr/tasks/${taskId}/retry`, { method: "POST", body: {} });
    const node = $(`.transcript[data-asr-task-id="${CSS.escape(String(taskId))}"]`);
    if (node) {
      node.classList.remove("failed");
      node.replaceChildren(t("asr.processing"));
    }
  } catch (error) {
    showError(error);
  }
}

// ---- composer and canned responses ---------------------------------------------------------
async function send(event) {
  event?.preventDefault();
  const input = $("#composer-input");
  const text = input.value.trim();
  if (!text || !state.openId) return;
  const id = state.openId;
  try {
    const message = await api(`conversations/${id}/messages`, { method: "POST", body: { type: "text", content: text } });
    input.value = "";
    hideCanned();
    onMessage(message);
  } catch (error) {
    if (error.status === 409 || error.status === 403) await explainConflict(id, "send", error);
    else showError(error);
  }
}

// A photo or document for the customer (IM customers get it through their bot); the text in the
// composer goes with it as the caption.
async function sendAttachment(kind, event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !state.openId) return;
  const id = state.openId;
  const input = $("#composer-input");
  try {
    const message = await sendUpload(id, kind, file, input.value.trim());
    input.value = "";
    onMessage(message);
  } catch (error) {
    if (error.status === 409 || error.status === 403) await explainConflict(id, "send", error);
    else banner(uploadErrorText(error));
  }
}

async function cannedList() {
  if (state.canned === null) {
    try {
      const data = await api("canned-responses");
      state.canned = Array.isArray(data) ? data : data.results || [];
    } catch {
      state.canned = []; // the endpoint may not exist on this deployment
    }
  }
  return state.canned;
}

async function updateCanned() {
  const input = $("#composer-input");
  if (!/^\/(\S*)$/.test(input.value)) return hideCanned();
  const all = await cannedList();
  // read the composer again: while the list loaded, a pick or a send may have replaced the "/…"
  const match = /^\/(\S*)$/.exec(input.value);
  if (!match) return hideCanned();
  const term = match[1].toLowerCase();
  const items = all.filter(
    (c) => c.shortcode.toLowerCase().startsWith(term) || (c.keywords || []).some((k) => String(k).toLowerCase().includes(term)),
  );
  state.cannedMatches = items.slice(0, 8);
  state.cannedIndex = 0;
  renderCanned();
}

function renderCanned() {
  const box = $("#canned");
  const items = state.cannedMatches || [];
  box.replaceChildren(
    ...(items.length
      ? items.map((c, index) =>
          h(
            "li",
            { class: index === state.cannedIndex ? "active" : "", role: "option", onmousedown: (e) => { e.preventDefault(); pickCanned(c); } },
            h("b", {}, `/${c.shortcode}`),
            " ",
            c.text,
          ),
        )
      : [h("li", { class: "muted" }, t("canned.none"))]),
  );
  show(box);
}

function hideCanned() {
  state.cannedMatches = null;
  show($("#canned"), false);
}

function pickCanned(item) {
  const input = $("#composer-input");
  input.value = item.text;
  hideCanned();
  input.focus();
}

function composerKeys(event) {
  const matches = state.cannedMatches;
  if (matches && matches.length) {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      state.cannedIndex = (state.cannedIndex + (event.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length;
      renderCanned();
      return;
    }
    if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      pickCanned(matches[state.cannedIndex]);
      return;
    }
  }
  if (event.key === "Escape" && !$("#canned").classList.contains("hidden")) {
    event.preventDefault();
    hideCanned();
  }
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    // "/…" is a canned-response lookup, never a message: with no match, Enter does nothing
    if (/^\/\S*$/.test($("#composer-input").value.trim())) return;
    send();
  }
}

// ---- managing canned responses (consultants and admins) ------------------------------------
const cannedEdit = { id: null, keywords: [] };

async function openCannedManager() {
  state.canned = null;
  resetCannedForm();
  await renderCannedAdmin();
  $("#canned-dialog").showModal();
  $("#canned-shortcode").focus();
}

async function renderCannedAdmin() {
  const items = await cannedList();
  $("#canned-admin-list").replaceChildren(
    ...(items.length
      ? items.map((item) => {
          const remove = h("button", { type: "button", class: "linkish danger canned-delete" }, t("canned.delete"));
          remove.addEventListener("click", () => {
            if (remove.dataset.armed) deleteCanned(item);
            else {
              remove.dataset.armed = "1";
              remove.textContent = t("canned.confirmDelete");
            }
          });
          return h(
            "li",
            { class: "canned-item", dataset: { shortcode: item.shortcode } },
            h("div", { class: "row" }, h("b", {}, `/${item.shortcode}`), h("span", { class: "canned-item-text" }, item.text)),
            h("div", { class: "row" }, h("span", { class: "tag-list" }, ...(item.keywords || []).map((k) => h("span", { class: "tag" }, k))), h("button", { type: "button", class: "linkish canned-edit", onclick: () => editCanned(item) }, t("common.edit")), remove),
          );
        })
      : [h("li", { class: "muted" }, t("canned.empty"))]),
  );
}

function resetCannedForm() {
  cannedEdit.id = null;
  cannedEdit.keywords = [];
  $("#canned-form").reset();
  $("#canned-form-title").textContent = t("canned.new");
  $("#canned-error").textContent = "";
  renderKeywordTags();
}

function editCanned(item) {
  cannedEdit.id = item.id;
  cannedEdit.keywords = [...(item.keywords || [])];
  $("#canned-shortcode").value = item.shortcode;
  $("#canned-text").value = item.text;
  $("#canned-form-title").textContent = t("canned.edit", { shortcode: item.shortcode });
  $("#canned-error").textContent = "";
  renderKeywordTags();
  $("#canned-text").focus();
}

function renderKeywordTags() {
  const input = $("#canned-keyword-input");
  const tags = cannedEdit.keywords.map((word) =>
    h(
      "span",
      { class: "tag", dataset: { keyword: word } },
      word,
      h("button", { type: "button", class: "linkish tag-remove", "aria-label": t("canned.removeKeyword", { word }), onclick: () => { cannedEdit.keywords = cannedEdit.keywords.filter((k) => k !== word); renderKeywordTags(); } }, "×"),
    ),
  );
  $("#canned-tags").replaceChildren(...tags, input);
}

function addKeywords(raw) {
  for (const word of raw.split(/[,，、;；\s]+/)) {
    const clean = word.trim().slice(0, 64);
    if (clean && !cannedEdit.keywords.includes(clean)) cannedEdit.keywords.push(clean);
  }
  renderKeywordTags();
}

function keywordKeys(event) {
  const input = event.target;
  if ((event.key === "Enter" || event.key === "," || event.key === "，") && !event.isComposing) {
    event.preventDefault();
    addKeywords(input.value);
    input.value = "";
    input.focus();
  } else if (event.key === "Backspace" && !input.value && cannedEdit.keywords.length) {
    cannedEdit.keywords.pop();
    renderKeywordTags();
    input.focus();
  }
}

async function saveCanned(event) {
  event.preventDefault();
  const pending = $("#canned-keyword-input");
  if (pending.value.trim()) {
    addKeywords(pending.value);
    pending.value = "";
  }
  const body = { shortcode: $("#canned-shortcode").value.trim(), text: $("#canned-text").value.trim(), keywords: cannedEdit.keywords };
  try {
    const saved = cannedEdit.id
      ? await api(`canned-responses/${cannedEdit.id}`, { method: "PUT", body })
      : await api("canned-responses", { method: "POST", body });
    state.canned = null;
    resetCannedForm();
    await renderCannedAdmin();
    toast(t("canned.saved", { shortcode: saved.shortcode }), { timeout: 3000 });
  } catch (error) {
    const field = error.details?.field || Object.keys(error.details?.fields || {})[0];
    if (error.code === "shortcode_taken") $("#canned-error").textContent = t("canned.taken", { shortcode: body.shortcode });
    else if (field === "shortcode") $("#canned-error").textContent = t("canned.badShortcode");
    else $("#canned-error").textContent = error.message;
  }
}

async function deleteCanned(item) {
  try {
    await api(`canned-responses/${item.id}`, { method: "DELETE" });
    state.canned = null;
    if (cannedEdit.id === item.id) resetCannedForm();
    await renderCannedAdmin();
    toast(t("canned.deleted", { shortcode: item.shortcode }), { timeout: 3000 });
  } catch (error) {
    $("#canned-error").textContent = error.message;
  }
}

// ---- AI help -------------------------------------------------------------------------------
function showSuggestions(conversationId, suggestions) {
  if (conversationId !== state.openId) return;
  const list = $("#suggestion-list");
  list.replaceChildren(
    ...suggestions.map((s) =>
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "suggestion",
            onclick: () => {
              const input = $("#composer-input");
              input.value = s.text;
              input.focus();
            },
          },
          s.kind ? h("small", { class: "muted" }, `${s.kind} · `) : null,
          s.text,
        ),
      ),
    ),
  );
  show($("#suggestion-empty"), suggestions.length === 0);
}

async function loadSummary(id) {
  try {
    const data = await api(`conversations/${id}/summary`);
    renderSummary(id, data);
  } catch {
    /* no summary endpoint, or none for this conversation: nothing to show */
  }
}

function renderSummary(id, data) {
  if (id !== state.openId) return;
  const box = $("#summary");
  const children = [h("h3", {}, t("summary.title"))];
  if (data.status === "pending") children.push(h("p", { class: "muted" }, t("summary.pending")));
  else if (data.status === "failed") children.push(h("p", { class: "error" }, t("summary.failed")));
  else {
    const summary = data.summary || {};
    for (const field of ["main_issues", "solution", "evaluation", "follow_up"]) {
      if (summary[field] === undefined || summary[field] === null || summary[field] === "") continue;
      const value = Array.isArray(summary[field]) ? summary[field].join("；") : typeof summary[field] === "object" ? JSON.stringify(summary[field]) : summary[field];
      children.push(h("div", { class: "summary-row", dataset: { field } }, h("b", {}, t(`summary.${field}`)), " ", value));
    }
  }
  box.replaceChildren(...children);
  show(box);
}

// ---- customer panel ------------------------------------------------------------------------
async function loadCustomer(customerId) {
  try {
    const profile = await api(`console/customers/${customerId}`);
    state.customerProfile = profile;
    renderChatHead();
    const row = (label, value) => [h("dt", {}, t(label)), h("dd", {}, value || "—")];
    $("#customer-info").replaceChildren(
      ...row("customer.nickname", profile.nickname),
      ...row("customer.username", profile.username),
      ...row("customer.source", profile.platform_user_id ? `${profile.source} · ${profile.platform_user_id}` : profile.source),
      ...row("customer.registered", formatTime(profile.created_at)),
      ...row(
        "customer.blacklist",
        profile.blacklisted ? t("customer.blacklisted", { reason: profile.blacklisted.reason || "—" }) : t("customer.notBlacklisted"),
      ),
      ...(profile.bot ? row("customer.bot", t(profile.bot.is_stale ? "customer.botStale" : "customer.botAlive", { name: profile.bot.name })) : []),
    );
    $("#customer-convs").replaceChildren(
      ...profile.conversations.map((c) =>
        h(
          "li",
          { class: c.id === state.openId ? "current" : "", onclick: () => openIfKnown(c.id) },
          `#${c.id} `,
          h("span", { class: `badge s-${c.status}` }, t(`status.${c.status}`)),
          ` ${c.channel} · ${formatTime(c.created_at)}`,
        ),
      ),
    );
  } catch (error) {
    $("#customer-info").replaceChildren(h("dd", { class: "error" }, error.message));
  }
}

async function openIfKnown(id) {
  if (!state.conversations.has(id)) await loadConversations();
  if (state.conversations.has(id)) openConversation(id);
}

// ---- live events ---------------------------------------------------------------------------
function bumpCursor(kind, id) {
  if (typeof id === "number" && (state.cursor[kind] === null || id > state.cursor[kind])) state.cursor[kind] = id;
}

function onMessage(message) {
  bumpCursor("message", message.id);
  const id = message.conversation_id;
  const previous = state.previews.get(id);
  // Newer than the newest message this tab knew of the conversation: the resync overlap and
  // repeats of a message already shown are not unread.
  const isNew = !previous || message.id > previous.id;
  if (isNew) state.previews.set(id, message);
  const known = state.conversations.get(id);
  if (known) known.last_message_at = message.created_at;
  else refreshSoon();
  if (id === state.openId) addMessage(message);
  else if (message.sender_type === "customer" && isNew) {
    state.unread.set(id, (state.unread.get(id) || 0) + 1);
    if (document.hidden) notifyBrowser(known?.customer_nickname || t("sender.customer"), previewText(message));
  }
  renderList();
}

function onConversationUpdated(event) {
  bumpCursor("event", event.event_id ?? event.id);
  const c = state.conversations.get(event.conversation_id);
  if (c) {
    c.status = event.status;
    c.consultant = event.consultant_id ?? c.consultant;
    c.transfer_to = event.transfer_to_id ?? null;
    if (event.status === "ended") c.ended_at = event.timestamp || event.created_at;
  } else if (event.status === "waiting" || [event.consultant_id, event.transfer_to_id, event.actor_id].includes(state.me.id)) {
    refreshSoon(); // one this tab had not loaded and that concerns it
  }
  if (event.status !== "waiting") {
    state.fresh.delete(event.conversation_id);
    for (const stale of $$(`.toast.new-customer[data-conversation-id="${Number(event.conversation_id)}"]`)) stale.close();
  }
  const open = state.conversations.get(state.openId);
  if (event.conversation_id !== state.openId && open && (event.customer_id ?? c?.customer) === open.customer) {
    loadCustomer(open.customer); // the side panel's history shows this customer's other conversations
  }
  if (event.conversation_id === state.openId) {
    addEvent(event);
    renderChatHead();
    if (c) loadCustomer(c.customer);
    if (event.action === "claim" && event.actor_id !== state.me.id && event.consultant_id) {
      banner(t("race.lost", { who: staffName(event.consultant_id) }));
    }
  }
  if (event.action === "transfer" && event.transfer_to_id === state.me.id && event.type === "conversation.updated") {
    beep();
    notifyBrowser(t("act.transfer"), t("toast.transferIn", { who: staffName(event.actor_id), id: event.conversation_id }));
    const invite = t("toast.transferIn", { who: staffName(event.actor_id), id: event.conversation_id });
    toast(event.note ? [invite, h("span", { class: "toast-note" }, t("transfer.noteShown", { note: event.note }))] : invite, {
      kind: "transfer",
      key: `transfer:${event.event_id ?? event.conversation_id}`,
      actions: [
        [t("act.accept"), async () => { await openIfKnown(event.conversation_id); transition("accept"); }, "primary"],
        [t("act.decline"), async () => { await openIfKnown(event.conversation_id); transition("decline"); }],
      ],
    });
  }
  renderList();
}

// One toast per new customer, saying who and from where; the waiting list keeps a "新" badge
// until the conversation is opened or leaves the waiting list.
async function newCustomerToast(event) {
  const id = Number(event.conversation_id);
  if (state.announced.has(id)) return;
  state.announced.add(id);
  state.fresh.add(id);
  beep();
  let c = state.conversations.get(id);
  if (!c && event.customer_id) {
    try {
      const page = await api(`conversations?customer=${Number(event.customer_id)}&page_size=20`);
      for (const conversation of page.results) state.conversations.set(conversation.id, conversation);
      c = state.conversations.get(id);
    } catch {
      /* the toast still says a customer is waiting */
    }
  }
  refreshSoon();
  if (c && c.status !== "waiting") {
    state.fresh.delete(id);
    return;
  }
  const name = c?.customer_nickname || t("sender.customer");
  const text = t("toast.newCustomer", { name, channel: channelName(c?.channel) });
  notifyBrowser(event.title || t("tab.waiting"), text);
  toast(text, {
    kind: "new-customer",
    conversationId: id,
    key: `new-customer:${id}`,
    actions: [[t("act.claim"), () => claim(id), "primary"]],
  });
  renderList();
}

function onEvent(event) {
  switch (event.type) {
    case "message.new":
      onMessage(event.message);
      break;
    case "conversation.updated":
      onConversationUpdated(event);
      break;
    case "new_customer":
      newCustomerToast(event);
      break;
    case "sync.result":
      state.cursor.message = Math.max(state.cursor.message ?? 0, event.cursor.message);
      state.cursor.event = Math.max(state.cursor.event ?? 0, event.cursor.event);
      for (const message of event.messages) onMessage(message);
      for (const change of event.events) {
        onConversationUpdated({ ...change, event_id: change.id, type: "sync.event" });
        // A registration announced while this tab was disconnected: still waiting → the same toast.
        const waiting = event.events.filter((e) => e.conversation_id === change.conversation_id).at(-1).status === "waiting";
        if (change.action === "created_by_automation" && waiting) {
          newCustomerToast({ conversation_id: change.conversation_id, title: t("tab.waiting"), message: t("toast.missedCustomer") });
        }
      }
      loadConversations();
      break;
    case "presence.list":
      state.staff = new Map(event.staff.map((s) => [s.id, s]));
      if ($("#transfer-dialog").open) renderTransferTargets();
      break;
    case "asr.processing":
    case "asr.result":
      onAsr(event);
      break;
    case "message.updated":
      onMessageUpdated(event);
      break;
    case "suggestion.new":
      showSuggestions(event.conversation_id, event.suggestions || []);
      break;
    case "summary.ready":
      renderSummary(event.conversation_id, { status: "ready", summary: event.summary });
      break;
    case "admin.alert":
      toast(t("toast.alert", { message: event.message || event.title || event.code || "" }), { kind: "error" });
      break;
    default:
      break;
  }
}

function onAsr(event) {
  if (event.conversation_id !== state.openId) return;
  const bubble = $(`.msg[data-message-id="${CSS.escape(String(event.message_id))}"]`);
  if (!bubble) return;
  const node = bubble.querySelector(".transcript");
  if (!node) return;
  node.dataset.asrTaskId = event.asr_task_id || node.dataset.asrTaskId;
  node.classList.remove("failed");
  if (event.type === "asr.processing") node.replaceChildren(t("asr.processing"));
  else if (event.status === "failed" || event.error) {
    node.classList.add("failed");
    node.replaceChildren(t("asr.failed"), " ", h("button", { type: "button", class: "linkish asr-retry", onclick: () => retryAsr(node.dataset.asrTaskId) }, t("asr.retry")));
  } else node.replaceChildren(event.result?.text ?? event.text ?? "");
}

// ---- search --------------------------------------------------------------------------------
async function search(event) {
  event?.preventDefault();
  const q = $("#search-q").value.trim();
  const sender = $("#search-sender").value;
  const box = $("#search-results");
  if (!q && !sender) {
    show(box, false);
    show($("#conv-list"));
    return;
  }
  const params = new URLSearchParams({ page_size: "30" });
  if (q) params.set("q", q);
  if (sender) params.set("sender_type", sender);
  try {
    const { results } = await api(`conversations/messages/search?${params}`);
    box.replaceChildren(
      h("button", { type: "button", class: "linkish", dataset: { i18n: "search.close" }, onclick: () => { $("#search-q").value = ""; $("#search-sender").value = ""; search(); } }, t("search.close")),
      ...(results.length
        ? results.map((m) =>
            h(
              "div",
              { class: "hit", tabindex: 0, onclick: () => openIfKnown(m.conversation_id) },
              h("div", { class: "row" }, h("b", {}, m.customer_nickname), h("span", { class: "muted" }, `#${m.conversation_id} · ${formatTime(m.created_at)}`)),
              h("div", { class: "preview" }, previewText(m)),
            ),
          )
        : [h("p", { class: "muted" }, t("search.none"))]),
    );
    show(box);
    show($("#conv-list"), false);
  } catch (error) {
    showError(error);
  }
}

// ---- keyboard shortcuts --------------------------------------------------------------------
function shortcuts(event) {
  if (!state.me) return;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "k") {
    event.preventDefault();
    $("#search-q").focus();
    return;
  }
  if (event.key === "Escape") {
    // the composer's Esc closed its canned list; an open dialog takes its own Esc
    if (!event.defaultPrevented && !$("dialog[open]")) closeNewestToast();
    return;
  }
  if (!event.altKey) return;
  const click = (selector) => {
    const button = $(selector);
    if (button && !button.classList.contains("hidden") && !$("#chat").classList.contains("hidden")) button.click();
  };
  const actions = {
    c: () => click("#btn-claim"),
    a: () => click("#btn-accept"),
    d: () => click("#btn-decline"),
    t: () => click("#btn-transfer"),
    e: () => click("#btn-end"),
    ArrowDown: () => step(1),
    ArrowUp: () => step(-1),
  };
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  const code = event.code?.startsWith("Key") ? event.code.slice(3).toLowerCase() : null; // Alt+letter on macOS types a symbol
  const action = actions[key] || (code && actions[code]);
  if (action) {
    event.preventDefault();
    action();
  }
}

function step(direction) {
  const list = visibleConversations();
  if (!list.length) return;
  const index = list.findIndex((c) => c.id === state.openId);
  const next = list[(index + direction + list.length) % list.length];
  openConversation(next.id);
}

// ---- wiring --------------------------------------------------------------------------------
function wire() {
  applyI18n();
  $("#lang").addEventListener("click", () => toggleLang(() => { renderList(); if (state.openId) openConversation(state.openId); }));
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#presence").addEventListener("change", (e) => state.socket?.send({ type: "presence.set", status: e.target.value }));
  for (const button of $$(".tab")) button.addEventListener("click", () => { state.tab = button.dataset.tab; renderList(); });
  $("#btn-claim").addEventListener("click", () => claim());
  $("#btn-accept").addEventListener("click", () => transition("accept"));
  $("#btn-decline").addEventListener("click", () => transition("decline"));
  $("#btn-end").addEventListener("click", () => transition("end"));
  $("#btn-transfer").addEventListener("click", openTransfer);
  $("#btn-blacklist").addEventListener("click", () => {
    $("#blacklist-form").reset();
    $("#blacklist-dialog").showModal();
  });
  $("#transfer-form").addEventListener("submit", submitTransfer);
  $("#transfer-cancel").addEventListener("click", () => $("#transfer-dialog").close());
  $("#blacklist-form").addEventListener("submit", submitBlacklist);
  $("#blacklist-cancel").addEventListener("click", () => $("#blacklist-dialog").close());
  $("#canned-manage").addEventListener("click", openCannedManager);
  $("#back-to-list").addEventListener("click", () => setView("list"));
  $("#show-panel").addEventListener("click", () => setView("panel"));
  $("#back-to-chat").addEventListener("click", () => setView("chat"));
  $("#canned-form").addEventListener("submit", saveCanned);
  $("#canned-reset").addEventListener("click", resetCannedForm);
  $("#canned-close").addEventListener("click", () => $("#canned-dialog").close());
  $("#canned-keyword-input").addEventListener("keydown", keywordKeys);
  $("#load-older").addEventListener("click", loadOlder);
  $("#timeline").addEventListener("scroll", (e) => {
    if (e.target.scrollTop === 0 && !$("#load-older").classList.contains("hidden")) loadOlder();
  });
  $("#composer").addEventListener("submit", send);
  $("#attach-image").addEventListener("change", (e) => sendAttachment("image", e));
  $("#attach-file").addEventListener("change", (e) => sendAttachment("file", e));
  $("#composer-input").addEventListener("keydown", composerKeys);
  $("#composer-input").addEventListener("input", updateCanned);
  $("#search-form").addEventListener("submit", search);
  $("#search-sender").addEventListener("change", search);
  document.addEventListener("keydown", shortcuts);
  const current = session.get();
  if (current?.tenant) $("#login-form").elements.tenant.value = current.tenant;
  if (current?.token) start();
}

wire();
