// Kefu web chat: the page at / and the widget's frame.
//
// What is shown comes only from the server's ordered message ids (seq): the page asks for
// "everything after the last id I showed" in a long poll, so a reload, a reconnect, a restarted
// server or a second tab shows each message once, in order, without trusting this browser's
// clock.  A message being sent waits in localStorage (the outbox) with its own id until the
// server has it, and is resent after a failure or a reload; the server counts it once.
(() => {
  "use strict";
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const human = document.getElementById("human");
  const typing = document.getElementById("typing");
  const file = document.getElementById("file");
  const TOKEN_KEY = "kefu-visitor";
  const OUTBOX_KEY = "kefu-outbox";
  const params = new URLSearchParams(location.search);
  if (params.get("embed") === "1") document.body.classList.add("embed");

  let token = localStorage.getItem(TOKEN_KEY) || "";
  let customer = new URLSearchParams(location.hash.slice(1)).get("customer") || "";  // signed by the site
  let lastSeq = 0;
  let language = "";
  let agentTyping = false;
  const pending = new Map();  // message_id -> element shown while the message is on its way
  const stored = new Set();  // message ids of the customer's lines already shown
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  const newId = () => (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + String(Date.now())).replace(/-/g, "");

  function outbox() {
    try { return JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]"); } catch (e) { return []; }
  }
  function saveOutbox(items) { localStorage.setItem(OUTBOX_KEY, JSON.stringify(items)); }

  // Text with line breaks kept (CSS) and http(s) links made clickable; never parsed as HTML.
  function rich(text) {
    const frag = document.createDocumentFragment();
    const re = /https?:\/\/[^\s<>"'，。！？、）)]+/g;
    let at = 0;
    for (const m of text.matchAll(re)) {
      frag.appendChild(document.createTextNode(text.slice(at, m.index)));
      const a = document.createElement("a");
      a.href = m[0];
      a.textContent = m[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer nofollow";
      frag.appendChild(a);
      at = m.index + m[0].length;
    }
    frag.appendChild(document.createTextNode(text.slice(at)));
    return frag;
  }

  function scroll() { log.scrollTop = log.scrollHeight; }

  function bubble(role, text) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.dataset.role = role;
    const body = document.createElement("div");
    body.className = "text";
    body.appendChild(rich(text));
    div.appendChild(body);
    return div;
  }

  function who(div, label) {
    const w = document.createElement("div");
    w.className = "who";
    w.textContent = label;
    div.insertBefore(w, div.firstChild);
  }

  function show(m) {
    if (m.seq <= lastSeq) return;  // already shown (another poll, the send's answer, a second tab)
    lastSeq = m.seq;
    if (m.role === "customer") {
      if (m.message_id) stored.add(m.message_id);
      const mine = m.message_id && pending.get(m.message_id);
      if (mine) {  // the message this tab sent: it is now stored, in its place in the order
        pending.delete(m.message_id);
        mine.classList.remove("pending");
        mine.dataset.seq = m.seq;
        log.appendChild(mine);
      } else {
        const div = bubble("customer", m.text);
        div.dataset.seq = m.seq;
        (m.attachments || []).forEach((a) => div.appendChild(fileLine(a.name || a.kind)));
        log.appendChild(div);
      }
      scroll();
      return;
    }
    const role = m.role === "agent" ? "agent" : "bot";  // system lines (joined, survey) read as the service's
    const div = bubble(role, m.text);
    div.dataset.seq = m.seq;
    if (m.role === "system") div.classList.add("system");
    who(div, role === "agent" ? "人工客服 " + (m.name || "Agent") : "智能客服 Kefu");
    if (m.suggestions && m.suggestions.length) {
      const box = document.createElement("div");
      box.className = "suggestions";
      m.suggestions.forEach((s) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = s.label;
        b.addEventListener("click", () => { box.remove(); say(s.label, s.label, [], s.payload); });
        box.appendChild(b);
      });
      div.appendChild(box);
    }
    if (m.rateable) div.appendChild(thumbs(m.seq));
    log.appendChild(div);
    if (role === "agent") setTyping(false);
    scroll();
  }

  function fileLine(name) {
    const f = document.createElement("div");
    f.className = "file";
    f.textContent = "附件 File: " + name;
    return f;
  }

  function thumbs(seq) {
    const box = document.createElement("div");
    box.className = "rate";
    [[true, "有用 Yes", "有帮助 Helpful"], [false, "没用 No", "没帮助 Not helpful"]].forEach(([helpful, icon, label]) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = icon;
      b.title = label;
      b.setAttribute("aria-label", label);
      b.dataset.helpful = String(helpful);
      b.addEventListener("click", async () => {
        box.querySelectorAll("button").forEach((x) => { x.disabled = true; });
        b.setAttribute("aria-pressed", "true");
        try {
          await api("/api/feedback", { token, seq, helpful });
        } catch (e) { /* a lost vote is not worth bothering the customer */ }
      });
      box.appendChild(b);
    });
    return box;
  }

  function status(text, action) {
    const div = document.createElement("div");
    div.className = "status";
    div.textContent = text;
    if (action) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = action.label;
      b.addEventListener("click", () => { div.remove(); action.run(); });
      div.appendChild(b);
    }
    log.appendChild(div);
    scroll();
    return div;
  }

  function setTyping(on) {
    agentTyping = on;
    typing.hidden = !on;
  }

  async function api(path, body) {
    const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { /* not JSON: a proxy's error page */ }
    return { r, data };
  }

  function resetView() {  // another conversation (a new visitor, or this one expired): show it from the start
    log.querySelectorAll(".msg:not(.greeting):not(.pending), .status").forEach((el) => el.remove());
    stored.clear();
    lastSeq = 0;
  }

  async function ensureToken(renew) {
    let told = null;
    for (;;) {
      try {
        const body = customer ? { customer } : {};
        if (token && !renew) body.token = token;
        const { r, data } = await api("/api/chat/visitor", body);
        if (r.ok && data.token) {
          if (told) told.remove();
          if (data.token !== token) { token = data.token; localStorage.setItem(TOKEN_KEY, token); resetView(); }
          return;
        }
        if (r.status === 429 && !told) told = status(data.error);  // too many new chats from this network
        if (customer && (r.status === 400 || r.status === 401)) {  // a bad signature: chat anonymously
          console.warn("kefu: " + data.error);
          customer = "";
          continue;
        }
      } catch (e) { /* offline: try again */ }
      await sleep(2000);
    }
  }

  // The long poll: everything after lastSeq; on any failure, wait a little and resume from it.
  async function syncForever() {
    for (let failures = 0; ;) {
      try {
        const r = await fetch(`/api/chat/messages?after=${lastSeq}&wait=20&typing=${agentTyping ? 1 : 0}`,
                              { headers: { "X-Kefu-Visitor": token }, cache: "no-store" });
        if (r.status === 401) { await ensureToken(true); continue; }
        if (r.status === 204) continue;
        if (!r.ok) throw new Error(String(r.status));
        absorb(await r.json());
        failures = 0;
      } catch (e) {
        failures = Math.min(failures + 1, 5);
        await sleep(1000 * failures);
      }
    }
  }

  async function syncNow() {
    try {
      const r = await fetch(`/api/chat/messages?after=${lastSeq}`, { headers: { "X-Kefu-Visitor": token }, cache: "no-store" });
      if (r.ok) absorb(await r.json());
    } catch (e) { /* the long poll catches up */ }
  }

  function absorb(data) {
    if (data.last < lastSeq) resetView();  // the conversation expired and began again: start over
    (data.messages || []).forEach(show);
    if (data.language) language = data.language;
    setTyping(Boolean(data.typing) && data.state === "agent");
  }

  // Send one outbox item until the server has it; its answer arrives through the poll.
  async function deliver(item) {
    let told = null;
    for (let failures = 0; ;) {
      let r, data;
      try {
        ({ r, data } = await api("/api/chat", { token, text: item.text, message_id: item.id, attachments: item.attachments,
                                               choice: item.choice }));
      } catch (e) {
        failures += 1;
        if (!told) told = status("网络不稳定，正在重试… / Reconnecting…");
        await sleep(Math.min(1000 * failures, 5000));
        continue;
      }
      if (r.status === 401) { await ensureToken(true); continue; }
      if (data.retry) {  // the server is busy, unreachable store, or the first copy is still being answered
        if (!told && r.status === 503) told = status((data.replies && data.replies[0] && data.replies[0].text) || "正在重试… / Retrying…");
        await sleep(1000 * (Number(r.headers.get("Retry-After")) || 2));
        continue;
      }
      if (told) told.remove();
      saveOutbox(outbox().filter((x) => x.id !== item.id));
      if (!r.ok) {
        const mine = pending.get(item.id);
        if (mine) { mine.remove(); pending.delete(item.id); }
        status(data.error || "出错了，请稍后再试 / Something went wrong");
      }
      await syncNow();
      const left = pending.get(item.id);
      if (left && stored.has(item.id)) { left.remove(); pending.delete(item.id); }
      return;
    }
  }

  function queue(item) {  // shown at once, sent one at a time in the order typed
    if (stored.has(item.id)) {  // it got through before a reload could clear it
      saveOutbox(outbox().filter((x) => x.id !== item.id));
      return;
    }
    const div = bubble("customer", item.shown || item.text);
    div.classList.add("pending");
    (item.attachments || []).forEach((a) => div.appendChild(fileLine(a.name)));
    pending.set(item.id, div);
    log.appendChild(div);
    scroll();
    sending = sending.then(() => deliver(item));
  }

  let sending = Promise.resolve();
  function say(text, shown, attachments, choice) {  // choice: the payload of a pressed suggestion
    const item = { id: newId(), text, shown, attachments: attachments || [] };
    if (choice) item.choice = choice;
    saveOutbox([...outbox(), item]);
    queue(item);
  }

  async function attach() {
    const f = file.files && file.files[0];
    file.value = "";
    if (!f) return;
    try {
      const r = await fetch("/api/chat/attachments", { method: "POST", body: f,
        headers: { "Content-Type": f.type || "application/octet-stream", "X-Kefu-Visitor": token,
                   "X-File-Name": encodeURIComponent(f.name) } });
      const data = await r.json();
      if (!r.ok) { status(data.error || "文件未能发送 / The file was not sent"); return; }
      say("", "", [{ ref: data.ref, name: f.name }]);  // no text: the bot must not read the file name as a question
    } catch (e) {
      status("文件未能发送，请重试 / The file was not sent, please retry");
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
    input.focus();
  });
  human.addEventListener("click", () => say(language === "en" ? "I want to talk to a person" : "转人工"));
  file.addEventListener("change", attach);

  (async () => {
    await ensureToken(false);
    await syncNow();  // the whole conversation so far, after a reload or in a new tab
    outbox().forEach(queue);  // what was not sent yet before a reload
    syncForever();
    input.focus();
  })();
})();
