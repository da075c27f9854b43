// The user's ticket page: the token is in the URL fragment (never sent to a server as a URL)
// and reaches the API in the X-Ticket-Token header.
(function () {
  "use strict";
  var T = {
    en: { title: "Your support ticket", conversation: "Conversation", add: "Add a message or a file", send: "Send",
      nosecrets: "Never share your password, 2FA codes, private keys or seed phrase — support never asks for them.",
      you: "You", agent: "Support", bot: "Assistant", due: "We aim to reply by {t}.", replied: "An agent is on your case.",
      sent: "Added to your ticket.", file: "File", other: "中文", closedNote: "This ticket is closed.",
      status: { new: "Waiting for an agent", open: "In progress", pending_user: "Waiting for your reply", resolved: "Resolved", closed: "Closed" } },
    zh: { title: "您的客服工单", conversation: "对话记录", add: "补充信息或上传文件", send: "发送",
      nosecrets: "请勿提供密码、两步验证码、私钥或助记词——客服绝不会索取。",
      you: "您", agent: "客服", bot: "智能助手", due: "我们预计在 {t} 前回复。", replied: "客服正在处理您的工单。",
      sent: "已添加到工单。", file: "文件", other: "English", closedNote: "此工单已关闭。",
      status: { new: "等待客服接手", open: "处理中", pending_user: "等待您的回复", resolved: "已解决", closed: "已关闭" } }
  };
  var token = decodeURIComponent((location.hash || "").slice(1));
  var lang = /^zh/i.test(navigator.language || "") ? "zh" : "en";
  var chosen = false, data = null;
  function $(id) { return document.getElementById(id); }
  function api(path, opts) {
    opts = opts || {};
    opts.headers = Object.assign({ "X-Ticket-Token": token }, opts.headers || {});
    return fetch("/ticket/api" + path + (path.indexOf("?") < 0 ? "?" : "&") + "lang=" + lang, opts)
      .then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); });
  }
  function fmt(iso) {
    try { return new Date(iso).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "medium", timeStyle: "short" }); }
    catch (e) { return iso; }
  }
  function problem(msg) { var p = $("problem"); p.textContent = msg; p.classList.remove("hidden"); }
  function render() {
    var t = T[lang];
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.title = t.title;
    document.querySelectorAll("[data-i18n]").forEach(function (el) { el.textContent = t[el.getAttribute("data-i18n")]; });
    $("lang").textContent = t.other;
    if (!data) return;
    $("ticket").classList.remove("hidden");
    $("number").textContent = data.number;
    $("status").textContent = t.status[data.status] || data.status;
    $("due").textContent = data.reply_due ? t.due.replace("{t}", fmt(data.reply_due)) :
      (data.status === "closed" ? t.closedNote : (data.replied ? t.replied : ""));
    var th = $("thread"); th.textContent = "";
    data.messages.forEach(function (m) {
      var d = document.createElement("div");
      d.className = "msg " + m.from; d.setAttribute("data-testid", "msg"); d.setAttribute("data-from", m.from);
      var w = document.createElement("div"); w.className = "who";
      w.textContent = (m.from === "user" ? t.you : (m.from === "agent" ? (m.author || t.agent) : t.bot)) + " · " + fmt(m.at);
      d.appendChild(w);
      if (m.text) d.appendChild(document.createTextNode(m.text));
      m.files.forEach(function (f) { var s = document.createElement("div"); s.className = "muted"; s.textContent = "📎 " + f.name; d.appendChild(s); });
      th.appendChild(d);
    });
    $("compose").classList.toggle("hidden", !data.can_write);
  }
  function load() {
    if (!token) { problem(lang === "zh" ? "此链接无效，请确认复制了完整的链接。" : "This link is not valid. Check that you copied all of it."); return; }
    return api("").then(function (r) {
      if (!r.ok) { $("ticket").classList.add("hidden"); problem(r.body.message || r.body.error); return; }
      data = r.body;
      if (!chosen) lang = data.lang;
      render();
    });
  }
  $("lang").addEventListener("click", function () { chosen = true; lang = lang === "zh" ? "en" : "zh"; render(); });
  $("compose").addEventListener("submit", function (e) {
    e.preventDefault();
    var text = $("text").value.trim(), file = $("file").files[0], jobs = [];
    $("sent").textContent = "";
    if (text) jobs.push(function () { return api("/message", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: text }) }); });
    if (file) jobs.push(function () { return api("/upload?name=" + encodeURIComponent(file.name), { method: "POST", headers: { "Content-Type": file.type || "application/octet-stream" }, body: file }); });
    var chain = Promise.resolve({ ok: true });
    jobs.forEach(function (j) { chain = chain.then(function (r) { return r.ok ? j() : r; }); });
    chain.then(function (r) {
      if (!r.ok) { $("sent").textContent = r.body.message || r.body.error; $("sent").classList.add("error"); return; }
      $("sent").classList.remove("error");
      $("sent").textContent = T[lang].sent; $("text").value = ""; $("file").value = "";
      return load();
    });
  });
  render();
  load();
  setInterval(function () { if (data && document.visibilityState === "visible") load(); }, 15000);
})();
