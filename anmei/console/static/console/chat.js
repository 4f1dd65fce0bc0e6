// The web customer's chat: register or log in, see the welcome arrive live, talk, rate.
import {
  $,
  $$,
  LiveSocket,
  addStrings,
  api,
  applyI18n,
  h,
  logout,
  messageBubble,
  sendUpload,
  session,
  show,
  t,
  toggleLang,
  uploadErrorText,
} from "./common.js";

addStrings({
  "chat.app": ["在线咨询", "Online consultation"],
  "chat.customerPlaceholder": ["请输入您想咨询的内容", "Type your question"],
  "chat.waitingWelcome": ["正在为您连接，请稍候…", "Connecting you, one moment…"],
  "chat.you": ["我", "Me"],
  "chat.consultant": ["顾问", "Consultant"],
  "chat.noConversation": ["暂无进行中的咨询，请稍候", "No open consultation yet, one moment"],
  "chat.newConversation": ["开始新的咨询", "Start a new consultation"],
  "auth.guest": ["免注册，直接咨询", "Start without an account"],
  "auth.or": ["或使用账号", "or use an account"],
  "auth.privacy": [
    "您在此提交的信息和照片仅用于{clinic}为您提供咨询服务，加密保存，不会提供给第三方。继续即表示您同意本说明。",
    "What you send here (text and photos) is used only by {clinic} to advise you; it is stored encrypted and never shared. By continuing you agree.",
  ],
  "auth.thisClinic": ["本机构", "this clinic"],
  "field.username": ["用户名", "Username"],
  "field.password": ["密码", "Password"],
  "field.tenant": ["机构", "Clinic"],
  "field.nickname": ["昵称", "Nickname"],
  "field.email": ["邮箱", "E-mail"],
  "field.phone": ["手机号", "Phone"],
  "err.username_taken": ["该用户名已被使用，请换一个", "This username is taken"],
  "err.invalid_credentials": ["用户名或密码错误", "Wrong username or password"],
  "err.tenant_not_found": ["找不到该机构，请检查链接", "Clinic not found: check the link"],
  "err.tenant_not_active": ["该机构暂未开放咨询", "This clinic is not open yet"],
  "guest.save": ["设置用户名和密码，下次可在任何设备登录：", "Choose a username and password to come back from any device:"],
  "guest.saveButton": ["保存", "Save"],
  "guest.saved": ["已保存，下次请用该用户名登录", "Saved: log in with this username next time"],
  "cstatus.waiting": ["正在为您安排顾问，请稍候", "Finding a consultant for you"],
  "cstatus.active": ["顾问已接入，正在为您服务", "A consultant is with you"],
  "cstatus.transferring": ["正在为您转接其他顾问", "Transferring you to another consultant"],
  "cstatus.ended": ["本次咨询已结束", "This consultation has ended"],
  "rate.ask": ["本次咨询结束，请为顾问的服务评分", "Please rate this consultation"],
  "rate.comment": ["留下您的意见（可选）", "Comments (optional)"],
  "rate.submit": ["提交评价", "Submit rating"],
  "rate.thanks": ["感谢您的评价！", "Thank you for your rating!"],
  "rate.already": ["您已评价过本次咨询", "You already rated this consultation"],
  "rate.unavailable": ["暂时无法评价", "Rating is not available"],
  "rate.pick": ["请选择 1 到 5 颗星", "Pick 1 to 5 stars"],
});

const state = { clinic: null, guest: false, me: null, conversation: null, messageIds: new Set(), oldestId: null, cursor: { message: null, event: null }, score: 0, mode: "register", socket: null };

function setMode(mode) {
  state.mode = mode;
  for (const tab of $$("[data-auth]")) tab.classList.toggle("active", tab.dataset.auth === mode);
  for (const el of $$(".register-only")) show(el, mode === "register");
  $("#auth-submit").dataset.i18n = `auth.${mode}`;
  $("#auth-submit").textContent = t(`auth.${mode}`);
  $("#auth-form").elements.password.autocomplete = mode === "register" ? "new-password" : "current-password";
}

// One line per problem, in the page's language, naming the field as the form does (never the
// API's field key); the same sentence twice is shown once.
function authErrorText(error) {
  const lines = [];
  const fields = error.details?.fields;
  if (fields && typeof fields === "object") {
    for (const [field, messages] of Object.entries(fields)) {
      const label = t(`field.${field}`) === `field.${field}` ? "" : `${t(`field.${field}`)}：`;
      for (const text of [].concat(messages)) lines.push(`${label}${text}`);
    }
  }
  if (!lines.length) {
    const known = t(`err.${error.code}`);
    lines.push(known === `err.${error.code}` ? t("error.generic", { message: error.message }) : known);
  }
  return [...new Set(lines)].join("\n");
}

async function submitAuth(event) {
  event.preventDefault();
  const form = Object.fromEntries(new FormData(event.target));
  $("#auth-error").textContent = "";
  try {
    if (state.mode === "register") {
      await api("auth/register", { method: "POST", body: form });
    }
    const result = await api("auth/login", { method: "POST", body: { tenant: form.tenant, username: form.username, password: form.password } });
    session.set({ token: result.token, user: result.user, tenant: form.tenant });
    start();
  } catch (error) {
    $("#auth-error").textContent = authErrorText(error);
  }
}

// The quick start: a guest session, no username to invent; a password can be set later.
async function startAsGuest() {
  const tenant = $("#auth-form").elements.tenant.value.trim();
  $("#auth-error").textContent = "";
  if (!tenant) {
    $("#auth-form").elements.tenant.focus();
    return;
  }
  try {
    const nickname = $("#auth-form").elements.nickname.value.trim();
    const result = await api("auth/guest", { method: "POST", body: { tenant, ...(nickname ? { nickname } : {}) } });
    session.set({ token: result.token, user: result.user, tenant, guest: true });
    start();
  } catch (error) {
    $("#auth-error").textContent = authErrorText(error);
  }
}

async function saveAccount(event) {
  event.preventDefault();
  const form = Object.fromEntries(new FormData(event.target));
  const current = session.get();
  $("#save-error").textContent = "";
  try {
    await api("auth/credentials", { method: "POST", body: form });
    // a password change revokes the guest token: log in with the new credentials in this tab
    const result = await api("auth/login", { method: "POST", body: { tenant: current.tenant, username: form.username, password: form.password } });
    session.set({ token: result.token, user: result.user, tenant: current.tenant });
    show($("#save-account"), false);
    flash(t("guest.saved"));
    state.socket?.stop();
    state.socket = new LiveSocket("/ws/customer/", { onEvent, onOpen, onState });
    state.socket.connect();
  } catch (error) {
    $("#save-error").textContent = authErrorText(error);
  }
}

// The clinic the link names: its name on the page, its slug kept out of sight.
async function loadClinic(slug) {
  let name = "";
  if (slug) {
    try {
      name = (await api(`tenants/public?slug=${encodeURIComponent(slug)}`)).name;
    } catch {
      name = "";
    }
  }
  state.clinic = name;
  $("#clinic-name").textContent = name ? `${name} · ` : "";
  if (name) document.title = `${name} · ${t("chat.app")}`;
  let text = "";
  if (slug) {
    try {
      text = (await api(`privacy-notice?tenant=${encodeURIComponent(slug)}`)).text || "";
    } catch {
      text = ""; // no published notice: the page's own summary below
    }
  }
  $("#privacy").textContent = text || t("auth.privacy", { clinic: name || t("auth.thisClinic") });
}

function start() {
  const current = session.get();
  if (!current?.token) return;
  state.me = current.user;
  show($("#auth-view"), false);
  show($("#app"));
  show($("#logout"));
  show($("#conn"));
  show($("#save-account"), Boolean(current.guest));
  state.socket = new LiveSocket("/ws/customer/", { onEvent, onOpen, onState });
  state.socket.connect();
}

function onState(value) {
  if (value === "unauthorized") {
    session.clear();
    location.reload();
    return;
  }
  const el = $("#conn");
  el.dataset.state = value;
  el.dataset.i18n = `conn.${value}`;
  el.textContent = t(el.dataset.i18n);
}

function onOpen() {
  state.socket.send({ type: "sync", since_message: state.cursor.message, since_event: state.cursor.event });
}

async function loadConversation() {
  try {
    const page = await api(`conversations?customer=${state.me.id}&page_size=20`);
    const open = page.results.find((c) => c.status !== "ended") || page.results[0] || null;
    if (open && (!state.conversation || state.conversation.id !== open.id)) await showConversation(open);
    else if (open) {
      state.conversation = open;
      renderStatus();
    }
  } catch {
    /* shown as "connecting" until an event arrives */
  }
}

async function showConversation(conversation) {
  state.conversation = conversation;
  state.messageIds = new Set();
  $("#timeline").replaceChildren($("#load-older"));
  const history = await api(`console/conversations/${conversation.id}/history?limit=30`);
  for (const message of history.results) addMessage(message);
  state.oldestId = history.results[0]?.id ?? null;
  show($("#load-older"), history.has_more);
  await loadRated(conversation);
  renderStatus();
}

// The server remembers a rating: a reload (or another device) must not offer the form again.
async function loadRated(conversation) {
  state.rated = false;
  if (conversation.status !== "ended") return;
  try {
    state.rated = (await api(`conversations/${conversation.id}/rating`)).rated;
  } catch {
    state.rated = false;
  }
}

async function loadOlder() {
  const c = state.conversation;
  if (!c || !state.oldestId) return;
  const timeline = $("#timeline");
  const before = timeline.scrollHeight;
  const page = await api(`console/conversations/${c.id}/history?limit=30&before=${state.oldestId}`);
  for (const message of page.results) addMessage(message, false);
  state.oldestId = page.results[0]?.id ?? state.oldestId;
  show($("#load-older"), page.has_more);
  timeline.scrollTop = timeline.scrollHeight - before;
}

function addMessage(message, scroll = true) {
  if (message.id > (state.cursor.message ?? 0)) state.cursor.message = message.id;
  if (state.conversation && message.conversation_id !== state.conversation.id) return;
  if (state.messageIds.has(message.id)) return;
  state.messageIds.add(message.id);
  $("#waiting-hint")?.remove();
  const mine = message.sender_type === "customer";
  const label = mine ? t("chat.you") : message.sender_type === "consultant" ? t("chat.consultant") : t(`sender.${message.sender_type}`);
  const bubble = messageBubble(message, { mine, senderLabel: label });
  const timeline = $("#timeline");
  const later = [...timeline.querySelectorAll(".msg")].find((el) => Number(el.dataset.messageId) > message.id);
  timeline.insertBefore(bubble, later || null);
  if (scroll) timeline.scrollTop = timeline.scrollHeight;
}

function renderStatus() {
  const c = state.conversation;
  const status = $("#status");
  status.textContent = c ? t(`cstatus.${c.status}`) : t("chat.noConversation");
  status.dataset.status = c?.status || "";
  const open = c && c.status !== "ended";
  $("#composer-input").disabled = !open;
  $("#send").disabled = !open;
  $("#image-input").disabled = !open;
  $("#file-input").disabled = !open;
  show($("#rating"), c?.status === "ended" && !state.rated);
  show($("#restart"), c?.status === "ended");
}

// A returning customer asks again: the server opens a new waiting conversation (or answers with
// the open one), which is then shown like any other; its welcome arrives on the socket.
async function startNew() {
  const button = $("#new-conversation");
  button.disabled = true;
  try {
    const conversation = await api("conversations", { method: "POST", body: {} });
    state.rated = false;
    await showConversation(conversation);
    $("#composer-input").focus();
  } catch (error) {
    flash(t("error.generic", { message: error.message }));
  } finally {
    button.disabled = false;
  }
}

async function onEvent(event) {
  if (event.type === "message.new") {
    if (!state.conversation || state.conversation.id !== event.conversation_id) await loadConversation();
    addMessage(event.message);
  } else if (event.type === "conversation.updated") {
    if (typeof event.event_id === "number" && event.event_id > (state.cursor.event ?? 0)) state.cursor.event = event.event_id;
    if (state.conversation && state.conversation.id === event.conversation_id) {
      state.conversation.status = event.status;
      if (event.status === "ended") await loadRated(state.conversation);
      renderStatus();
    } else await loadConversation();
  } else if (event.type === "sync.result") {
    state.cursor.message = Math.max(state.cursor.message ?? 0, event.cursor.message);
    state.cursor.event = Math.max(state.cursor.event ?? 0, event.cursor.event);
    await loadConversation();
    for (const message of event.messages) addMessage(message);
  }
}

async function send(event) {
  event?.preventDefault();
  const input = $("#composer-input");
  const text = input.value.trim();
  if (!text || !state.conversation) return;
  try {
    const message = await api(`conversations/${state.conversation.id}/messages`, { method: "POST", body: { type: "text", content: text } });
    input.value = "";
    addMessage(message);
  } catch (error) {
    flash(t("error.generic", { message: error.message }));
    if (error.status === 409) loadConversation();
  }
}

// A photo (often the first thing an aesthetics customer sends) or a document; what the composer
// holds goes with it as the caption.
async function sendAttachment(kind, event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file || !state.conversation) return;
  const input = $("#composer-input");
  const status = $("#status");
  const before = status.textContent;
  status.textContent = t("upload.sending");
  try {
    const message = await sendUpload(state.conversation.id, kind, file, input.value.trim());
    input.value = "";
    status.textContent = before;
    addMessage(message);
  } catch (error) {
    status.textContent = before;
    flash(uploadErrorText(error));
    if (error.status === 409) loadConversation();
  }
}

function flash(text) {
  const status = $("#status");
  const before = status.textContent;
  status.textContent = text;
  status.classList.add("error");
  setTimeout(() => {
    status.classList.remove("error");
    if (status.textContent === text) status.textContent = before;
  }, 4000);
}

function pickScore(score) {
  state.score = score;
  for (const star of $$(".stars button")) star.classList.toggle("on", Number(star.dataset.score) <= score);
}

async function rate(event) {
  event.preventDefault();
  const msg = $("#rating-msg");
  if (!state.score) {
    msg.textContent = t("rate.pick");
    return;
  }
  const comment = $("#rating-comment").value.trim();
  try {
    await api(`conversations/${state.conversation.id}/rating`, { method: "POST", body: { score: state.score, ...(comment ? { comment } : {}) } });
    msg.textContent = t("rate.thanks");
    state.rated = true;
    $("#rating-submit").disabled = true;
  } catch (error) {
    msg.textContent = error.status === 409 ? t("rate.already") : error.status === 404 ? t("rate.unavailable") : t("error.generic", { message: error.message });
    if (error.status === 409) {
      state.rated = true;
      $("#rating-submit").disabled = true;
    }
  }
}

function wire() {
  applyI18n();
  const tenant = new URLSearchParams(location.search).get("tenant") || session.get()?.tenant || "";
  if (tenant) {
    $("#auth-form").elements.tenant.value = tenant;
    show($("#tenant-field"), false);
  }
  loadClinic(tenant);
  $("#lang").addEventListener("click", () => toggleLang(() => { setMode(state.mode); renderStatus(); loadClinic($("#auth-form").elements.tenant.value); }));
  $("#guest-start").addEventListener("click", startAsGuest);
  $("#save-account").addEventListener("submit", saveAccount);
  for (const tab of $$("[data-auth]")) tab.addEventListener("click", () => setMode(tab.dataset.auth));
  $("#auth-form").addEventListener("submit", submitAuth);
  $("#logout").addEventListener("click", logout);
  $("#composer").addEventListener("submit", send);
  $("#composer-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  $("#image-input").addEventListener("change", (e) => sendAttachment("image", e));
  $("#file-input").addEventListener("change", (e) => sendAttachment("file", e));
  $("#load-older").addEventListener("click", loadOlder);
  $("#new-conversation").addEventListener("click", startNew);
  for (const star of $$(".stars button")) star.addEventListener("click", () => pickScore(Number(star.dataset.score)));
  $("#rating").addEventListener("submit", rate);
  setMode("register");
  if (session.get()?.token) start();
}

wire();
