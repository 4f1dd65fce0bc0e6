// Shared by the console and the chat: safe DOM building, i18n, the REST client, the live socket.
// Data only ever reaches the DOM as text nodes or attribute values: never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = String(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
export const show = (el, visible = true) => el.classList.toggle("hidden", !visible);

// ---- i18n: Chinese by default, English on request (remembered per browser) -------------------
const DICT = { zh: {}, en: {} };
let lang = localStorage.getItem("anmei.lang") === "en" ? "en" : "zh";

export function addStrings(table) {
  for (const [key, [zh, en]] of Object.entries(table)) {
    DICT.zh[key] = zh;
    DICT.en[key] = en;
  }
}

export function t(key, vars = {}) {
  const template = DICT[lang][key] ?? DICT.zh[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

export const currentLang = () => lang;

export function applyI18n(root = document) {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const el of $$("[data-i18n]", root)) el.textContent = t(el.dataset.i18n);
  for (const el of $$("[data-i18n-placeholder]", root)) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of $$("[data-i18n-title]", root)) el.title = t(el.dataset.i18nTitle);
  const button = $("#lang");
  if (button) button.textContent = lang === "zh" ? "English" : "中文";
}

export function toggleLang(onChange) {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("anmei.lang", lang);
  applyI18n();
  if (onChange) onChange();
}

addStrings({
  "conn.online": ["在线", "Connected"],
  "conn.offline": ["离线", "Offline"],
  "conn.connecting": ["连接中…", "Connecting…"],
  "conn.reconnecting": ["重新连接中…", "Reconnecting…"],
  "auth.tenant": ["机构", "Clinic"],
  "auth.username": ["用户名", "Username"],
  "auth.password": ["密码", "Password"],
  "auth.nickname": ["昵称", "Nickname"],
  "auth.login": ["登录", "Log in"],
  "auth.register": ["注册", "Register"],
  "auth.logout": ["退出", "Log out"],
  "chat.send": ["发送", "Send"],
  "chat.older": ["加载更早的消息", "Load earlier messages"],
  "common.cancel": ["取消", "Cancel"],
  "status.waiting": ["待接入", "Waiting"],
  "status.active": ["接待中", "Active"],
  "status.transferring": ["转接中", "Transferring"],
  "status.ended": ["已结束", "Ended"],
  "sender.customer": ["客户", "Customer"],
  "sender.consultant": ["顾问", "Consultant"],
  "sender.bot": ["机器人", "Bot"],
  "sender.system": ["系统", "System"],
  "msg.image": ["[图片]", "[Image]"],
  "msg.voice": ["[语音]", "[Voice]"],
  "msg.file": ["[文件]", "[File]"],
  "asr.processing": ["转写中…", "Transcribing…"],
  "asr.failed": ["转写失败", "Transcription failed"],
  "asr.retry": ["重试", "Retry"],
  "error.generic": ["操作失败：{message}", "Failed: {message}"],
  "delivery.pending": ["发送中", "Sending"],
  "delivery.sent": ["已送达", "Delivered"],
  "delivery.failed": ["发送失败", "Not delivered"],
  "delivery.attempts": ["已尝试 {n} 次", "{n} attempts"],
  "delivery.retry": ["重新发送", "Resend"],
  "upload.image": ["图片", "Image"],
  "upload.file": ["文件", "File"],
  "upload.imageTitle": ["发送图片", "Send an image"],
  "upload.fileTitle": ["发送文件", "Send a file"],
  "upload.sending": ["正在发送…", "Sending…"],
  "upload.tooLarge": ["文件过大，最大 {mb} MB", "Too large: at most {mb} MB"],
  "upload.badType": ["不支持这种文件格式", "This file format is not accepted"],
  "error.network": ["网络错误，请稍后再试", "Network error, try again"],
});

/** The words for a refused upload (413/415 from the media store), else the generic failure. */
export function uploadErrorText(error) {
  if (error.status === 413) {
    const limit = Number(error.details?.limit_bytes) || 0;
    return t("upload.tooLarge", { mb: Math.max(1, Math.round(limit / 1048576)) });
  }
  if (error.status === 415) return t("upload.badType");
  return t("error.generic", { message: error.message });
}

/** POST a photo or file as a message of a conversation (multipart; `content` is an optional caption). */
export function sendUpload(conversationId, kind, file, caption = "") {
  const form = new FormData();
  form.append("type", kind);
  form.append("file", file);
  if (caption) form.append("content", caption);
  return api(`conversations/${conversationId}/messages`, { method: "POST", form });
}

// ---- REST ----------------------------------------------------------------------------------
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "http_error";
    this.details = error?.details || {};
  }
}

// The bearer token lives in this tab only (sessionStorage): never in a URL, a cookie or a log.
export const session = {
  key: "anmei.session",
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(this.key) || "null");
    } catch {
      return null;
    }
  },
  set(value) {
    sessionStorage.setItem(this.key, JSON.stringify(value));
  },
  clear() {
    sessionStorage.removeItem(this.key);
  },
};

export async function api(path, { method = "GET", body, form } = {}) {
  const headers = { "Accept-Language": lang === "zh" ? "zh-CN" : "en" }; // server-made messages in the page's language
  const current = session.get();
  if (current?.token) headers.Authorization = `Bearer ${current.token}`;
  let payload;
  if (form) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, { method, headers, body: payload });
  } catch {
    throw new ApiError(0, { code: "network", message: t("error.network") });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error);
  return data;
}

// ---- The live socket: ticket auth, heartbeats, reconnect with backoff, resync on every open ----
/** Revoke this tab's token (POST /auth/logout), forget it, and show the login again. */
export async function logout() {
  try {
    await api("auth/logout", { method: "POST" });
  } catch {
    /* the token is dropped from this tab anyway */
  }
  session.clear();
  location.reload();
}

export class LiveSocket {
  constructor(path, { onEvent, onOpen, onState }) {
    this.path = path;
    this.onEvent = onEvent;
    this.onOpen = onOpen;
    this.onState = onState;
    this.ws = null;
    this.attempt = 0;
    this.stopped = false;
    this.heartbeat = null;
    this.retryTimer = null;
  }

  async connect() {
    if (this.stopped) return;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    let ticket;
    try {
      ({ ticket } = await api("auth/ws-ticket", { method: "POST" }));
    } catch (error) {
      if (error.status === 401) {
        this.stop();
        this.onState("unauthorized");
        return;
      }
      this.scheduleRetry();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.path}?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.addEventListener("message", (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event.type === "connection.ready") {
        const reconnect = this.attempt > 0;
        this.attempt = 0;
        this.onState("online");
        this.onOpen(reconnect);
        return;
      }
      if (event.type === "pong") return;
      this.onEvent(event);
    });
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      clearInterval(this.heartbeat);
      this.ws = null;
      if (!this.stopped) {
        this.onState("reconnecting");
        this.scheduleRetry();
      }
    });
    clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => this.send({ type: "ping" }), 20000);
  }

  scheduleRetry() {
    if (this.stopped) return;
    this.attempt += 1;
    const base = Math.min(10000, 500 * 2 ** Math.min(this.attempt - 1, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  stop() {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close();
    this.ws = null;
  }
}

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString(currentLang() === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString(currentLang() === "zh" ? "zh-CN" : "en-GB")} ${time}`;
}

export function previewText(message) {
  if (!message) return "";
  if (message.type === "image") return t("msg.image");
  if (message.type === "voice") {
    const transcript = asrState(message).text;
    return transcript ? `${t("msg.voice")} ${transcript}` : t("msg.voice");
  }
  if (message.type === "file") return t("msg.file");
  return message.content;
}

// Only our own paths and http(s) links become src/href: never javascript: or data: from a payload.
export function safeUrl(value) {
  if (typeof value !== "string" || !value) return null;
  try {
    const url = new URL(value, location.origin);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

// A message bubble (shared by both pages). `mine` decides the side; media from the signed media_url.
export function messageBubble(message, { mine, senderLabel, onAsrRetry, onDeliveryRetry } = {}) {
  const body = h("div", { class: "body" });
  const mediaUrl = safeUrl(message.media_url || message.payload?.media_url);
  if (message.type === "image" && mediaUrl) {
    body.append(h("img", { src: mediaUrl, alt: t("msg.image"), loading: "lazy" }));
    if (message.content) body.append(h("div", {}, message.content));
  } else if (message.type === "voice") {
    if (mediaUrl) body.append(h("audio", { controls: true, preload: "none", src: mediaUrl }));
    else body.append(h("div", {}, t("msg.voice")));
    body.append(transcriptNode(message, onAsrRetry));
  } else if (message.type === "file" && mediaUrl) {
    body.append(h("a", { href: mediaUrl, target: "_blank", rel: "noopener noreferrer", class: "file-link" }, t("msg.file"), " ", message.content || ""));
  } else {
    body.append(message.content);
  }
  return h(
    "div",
    {
      class: `msg ${message.sender_type} ${mine ? "mine" : "theirs"}`,
      dataset: { messageId: message.id },
    },
    h("div", { class: "meta" }, senderLabel || t(`sender.${message.sender_type}`), " · ", formatTime(message.created_at)),
    body,
    message.delivery ? deliveryNode(message.id, message.delivery, onDeliveryRetry) : null,
  );
}

// A message to an IM customer goes out through their bot: pending, sent, or failed (with a retry).
export function deliveryNode(messageId, delivery, onRetry) {
  const status = ["pending", "sent", "failed"].includes(delivery?.status) ? delivery.status : "pending";
  const node = h("div", { class: `delivery ${status}`, dataset: { status } }, t(`delivery.${status}`));
  if (status === "failed") {
    if (delivery.attempts) node.append(" · ", t("delivery.attempts", { n: delivery.attempts }));
    if (onRetry) node.append(" ", h("button", { type: "button", class: "linkish delivery-retry", onclick: () => onRetry(messageId) }, t("delivery.retry")));
  }
  return node;
}

// The ASR worker writes the transcript into `content` and its state into payload.asr.status.
export function asrState(message) {
  const payload = message.payload && typeof message.payload === "object" ? message.payload : {};
  const asr = message.asr || (payload.asr && typeof payload.asr === "object" ? payload.asr : {});
  const taskId = asr.asr_task_id ?? payload.asr_task_id ?? message.asr_task_id ?? null;
  const text = asr.text ?? payload.transcript ?? (asr.status === "success" ? message.content : undefined);
  return { status: asr.status, taskId, text };
}

export function transcriptNode(message, onAsrRetry) {
  const asr = asrState(message);
  const node = h("div", { class: "transcript", dataset: { asrTaskId: asr.taskId ?? "" } });
  const transcript = asr.text;
  if (asr.status === "failed") {
    node.classList.add("failed");
    node.append(t("asr.failed"));
    if (onAsrRetry && node.dataset.asrTaskId) {
      node.append(" ", h("button", { type: "button", class: "linkish asr-retry", onclick: () => onAsrRetry(node.dataset.asrTaskId) }, t("asr.retry")));
    }
  } else if (transcript) node.append(transcript);
  else if (asr.status === "processing" || asr.status === "pending" || asr.taskId !== null) node.append(t("asr.processing"));
  return node;
}
