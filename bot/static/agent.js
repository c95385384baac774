(() => {
  const $ = (id) => document.getElementById(id);
  const state = { me: null, csrf: "", current: null, detail: null, inbox: null, agents: [], source: null };
  const REASON = { complaint: "投诉 Complaint", human_request: "要求人工 Asked for agent",
                   repeated_failure: "多次未解答 Bot failed", low_confidence: "机器人没把握 Bot unsure" };

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function ago(ts) {
    const s = Math.max(0, Math.floor(Date.now() / 1000 - ts));
    if (s < 60) return s + "秒 s";
    if (s < 3600) return Math.floor(s / 60) + "分 min";
    return Math.floor(s / 3600) + "时 h " + Math.floor((s % 3600) / 60) + "分";
  }
  function who(t) { return t.customer_name || `${t.channel} 访客 visitor ${t.user_id.slice(0, 8)}`; }
  function clock(ts) { return new Date(ts * 1000).toLocaleTimeString(); }

  async function api(method, path, body) {
    const headers = { "Content-Type": "application/json" };
    if (method !== "GET") headers["X-CSRF-Token"] = state.csrf;
    const r = await fetch("/api/agent" + path, { method, headers, credentials: "same-origin",
                                                  body: body === undefined ? undefined : JSON.stringify(body) });
    let data = {};
    try { data = await r.json(); } catch (e) { /* empty body */ }
    if (r.status === 401 && path !== "/login") { showLogin(); }
    if (!r.ok) { const err = new Error(data.error || r.statusText); err.status = r.status; throw err; }
    return data;
  }

  function toast(text, warn) {
    const t = el("div", "toast" + (warn ? " warn" : ""), text);
    $("toasts").appendChild(t);
    setTimeout(() => t.remove(), 8000);
  }
  function notify(text) {
    toast(text, true);
    if ("Notification" in window && Notification.permission === "granted") new Notification("Kefu", { body: text });
  }

  function showLogin() {
    if (state.source) { state.source.close(); state.source = null; }
    state.current = null; state.detail = null; state.inbox = null;
    $("chat-head").hidden = true; $("composer").hidden = true; $("ctx").hidden = true; $("ctx-empty").hidden = false;
    $("transcript").replaceChildren(el("div", "", "从左侧选择一个会话 · Pick a ticket on the left"));
    $("transcript").firstChild.id = "placeholder";
    $("csat").textContent = "";
    $("app").classList.remove("on");
    $("login").style.display = "";
    $("logout").hidden = true;
    $("whoami").textContent = "";
  }

  async function start(me) {
    state.me = me.name; state.csrf = me.csrf; state.role = me.role;
    $("login").style.display = "none";
    $("app").classList.add("on");
    $("logout").hidden = false;
    $("whoami").textContent = me.name + (me.role === "admin" ? " (管理员 admin)" : "");
    const [agents, canned] = await Promise.all([api("GET", "/agents"), api("GET", "/canned")]);
    state.agents = agents.agents;
    const sel = $("canned");
    sel.length = 1;
    canned.canned.forEach((c) => { const o = el("option", "", c.title); o.value = c.text; sel.appendChild(o); });
    await refreshInbox();
    if (me.role === "admin") refreshCsat();
    connect();
    if ("Notification" in window && Notification.permission === "default") Notification.requestPermission();
  }

  function connect() {
    if (state.source) state.source.close();
    const src = new EventSource("/api/agent/events");
    state.source = src;
    src.addEventListener("hello", () => { $("live").textContent = "● 实时 live"; refreshInbox(); if (state.current) openTicket(state.current); });
    src.onerror = () => { $("live").textContent = "○ 重连中 reconnecting…"; };
    ["ticket", "resync"].forEach((t) => src.addEventListener(t, () => { scheduleInbox(); refreshCurrent(); }));
    ["message", "note", "rating"].forEach((t) => src.addEventListener(t, (ev) => {
      const data = JSON.parse(ev.data);
      if (t === "rating" && state.role === "admin") refreshCsat();
      if (data.ticket_id === state.current) refreshCurrent();
      if (t === "message" && data.line && data.line.role === "customer") scheduleInbox();
    }));
    src.addEventListener("escalated", (ev) => {
      const data = JSON.parse(ev.data);
      notify(`⚠ 超时未接入 Unclaimed for ${data.minutes} min: ${data.ticket.summary}`);
      scheduleInbox();
    });
    src.addEventListener("reminder", (ev) => {
      const data = JSON.parse(ev.data);
      notify(`⏰ 跟进提醒 Follow-up due (${data.ticket_id}): ${data.text || ""}`);
    });
    src.addEventListener("delivery_failed", (ev) => {
      const data = JSON.parse(ev.data);
      if (data.ticket_id === state.current || data.owner === state.me) notify("✖ " + data.error);
      if (data.ticket_id === state.current) refreshCurrent();
    });
  }

  async function refreshCsat() {
    try {
      const r = await api("GET", "/ratings");
      $("csat").textContent = r.count ? `满意度 CSAT ★${r.average} (${r.count})` : "";
    } catch (e) { /* agents without the admin role */ }
  }

  let inboxTimer = null;
  function scheduleInbox() { clearTimeout(inboxTimer); inboxTimer = setTimeout(refreshInbox, 150); }
  let currentTimer = null;
  function refreshCurrent() { if (!state.current) return; clearTimeout(currentTimer); currentTimer = setTimeout(() => openTicket(state.current), 100); }

  function ticketItem(t, kind) {
    const div = el("div", "ticket " + t.reason + (t.escalated && t.status === "queued" ? " escalated" : "")
                          + (t.id === state.current ? " current" : ""));
    div.dataset.id = t.id;
    div.dataset.status = t.status;
    const top = el("div", "top");
    top.appendChild(el("span", "reason", REASON[t.reason] || t.reason));
    if (kind === "queued") top.appendChild(el("span", "badge", "#" + t.position));
    top.appendChild(el("span", "badge", t.channel));
    top.appendChild(el("span", "badge", t.language));
    if (t.escalated && t.status === "queued") top.appendChild(el("span", "badge warn", "超时 SLA"));
    if (t.after_hours) top.appendChild(el("span", "badge", "留言 after hours"));
    top.appendChild(el("span", "wait", kind === "queued" ? "等待 " + ago(t.created_at) : (kind === "others" ? t.owner : "")));
    div.appendChild(top);
    div.appendChild(el("div", "summary", who(t) + " · " + t.summary));
    if (kind === "queued") {
      const b = el("button", "claim primary", "接入 Claim");
      b.type = "button";
      b.addEventListener("click", (ev) => { ev.stopPropagation(); claim(t.id); });
      div.appendChild(b);
    }
    div.addEventListener("click", () => openTicket(t.id));
    return div;
  }

  async function refreshInbox() {
    let data;
    try { data = await api("GET", "/tickets"); } catch (e) { return; }
    state.inbox = data;
    ["queued", "mine", "others"].forEach((kind) => {
      const box = $(kind);
      box.replaceChildren();
      data[kind].forEach((t) => box.appendChild(ticketItem(t, kind)));
      if (!data[kind].length) box.appendChild(el("div", "empty", "—"));
      $("count-" + kind).textContent = data[kind].length;
    });
    const waiting = data.queued.length;
    document.title = (waiting ? `(${waiting}) ` : "") + "Kefu 坐席工作台";
  }

  async function claim(id) {
    try {
      await api("POST", `/tickets/${id}/claim`);
      state.current = id;
      await refreshInbox();
      await openTicket(id);
      $("reply").focus();
    } catch (e) { toast("✖ " + e.message, true); refreshInbox(); }
  }

  const WHO = { customer: "客户 Customer", bot: "机器人 Bot", agent: "坐席 Agent", system: "系统 System" };
  async function openTicket(id) {
    let d;
    try { d = await api("GET", `/tickets/${id}`); } catch (e) { toast("✖ " + e.message, true); return; }
    state.current = id; state.detail = d;
    document.querySelectorAll(".ticket").forEach((n) => n.classList.toggle("current", n.dataset.id === id));
    const t = d.ticket;
    const mine = t.status === "claimed" && t.owner === state.me;
    $("chat-head").hidden = false;
    $("chat-title").textContent = `${who(t)} · ${REASON[t.reason] || t.reason}`;
    $("chat-status").textContent = t.status + (t.owner ? " · " + t.owner : "") + (d.position ? " · #" + d.position : "")
                                   + (t.rating ? " · ★" + t.rating : "");
    $("claim").hidden = t.status !== "queued";
    $("export").href = `/api/agent/tickets/${encodeURIComponent(id)}/export`;
    ["transfer", "transfer-to", "handback", "resolve"].forEach((b) => { $(b).hidden = !mine; });
    $("composer").hidden = !mine;
    const sel = $("transfer-to");
    sel.replaceChildren();
    state.agents.filter((a) => a.name !== t.owner).forEach((a) => { const o = el("option", "", a.name); o.value = a.name; sel.appendChild(o); });

    const box = $("transcript");
    box.replaceChildren();
    let trigger = -1;  /* the customer message that asked for a human: marked with a line */
    d.transcript.forEach((line, i) => { if (line.role === "customer" && line.at <= t.created_at) trigger = i; });
    d.transcript.forEach((line, i) => {
      const div = el("div", "line " + line.role + (i === trigger ? " since" : ""));
      div.dataset.role = line.role;
      if (line.role !== "system") div.appendChild(el("div", "who", (line.agent ? line.agent : WHO[line.role]) + " · " + clock(line.at)));
      div.appendChild(el("div", "text", line.text));
      (line.attachments || []).forEach((a) => {
        const row = el("div", "who", "📎 " + a.kind + " ");
        if (String(a.ref).startsWith("/api/chat/attachments/")) {  // a web visitor's file, kept by Kefu
          const link = el("a", "attachment", a.name || a.ref);
          link.href = a.ref; link.target = "_blank"; link.rel = "noopener noreferrer";
          row.appendChild(link);
        } else row.appendChild(document.createTextNode(a.name || a.ref));
        div.appendChild(row);
      });
      box.appendChild(div);
    });
    box.scrollTop = box.scrollHeight;

    $("ctx-empty").hidden = true; $("ctx").hidden = false;
    $("ctx-summary").textContent = t.summary;
    const dl = $("ctx-details");
    dl.replaceChildren();
    const profile = (d.conversation && d.conversation.profile) || d.context.profile || {};
    [["原因 Reason", `${REASON[t.reason] || t.reason}${t.detail ? " — " + t.detail : ""}`],
     ["渠道 Channel", t.channel], ["语言 Language", t.language], ["客户 Customer", `${profile.name || "—"} (${t.user_id})`],
     ["首次 First seen", profile.first_seen ? new Date(profile.first_seen * 1000).toLocaleDateString() : "—"],
     ["会话数 Visits", String(profile.conversations || 1)], ["创建 Opened", clock(t.created_at) + " (" + ago(t.created_at) + ")"],
     ["服务时间 Hours", t.after_hours ? "非服务时间留言 after hours" : "服务时间内 in hours"]]
      .forEach(([k, v]) => { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); });
    const cands = $("ctx-candidates");
    cands.replaceChildren();
    (d.context.candidates || []).forEach((c) => {
      const row = el("div", "cand");
      row.appendChild(el("span", "", c.question || c.entry_id));
      row.appendChild(el("span", "badge", Math.round(c.score * 100) + "%"));
      cands.appendChild(row);
    });
    if (!(d.context.candidates || []).length) cands.appendChild(el("div", "empty", "—"));
    const earlier = $("ctx-earlier");
    earlier.replaceChildren();
    d.earlier_tickets.forEach((e) => earlier.appendChild(el("div", "cand",
      `${new Date(e.created_at * 1000).toLocaleDateString()} ${REASON[e.reason] || e.reason} · ${e.status}${e.rating ? " · ★" + e.rating : ""}`)));
    if (!d.earlier_tickets.length) earlier.appendChild(el("div", "empty", "首次 first ticket"));
    const notes = $("notes");
    notes.replaceChildren();
    d.notes.forEach((n) => {
      const div = el("div", "note " + (n.kind || ""));
      div.appendChild(el("div", "who", `${n.agent} · ${clock(n.at)}${n.kind && n.kind !== "note" ? " · " + n.kind : ""}`));
      div.appendChild(el("div", "", n.text));
      notes.appendChild(div);
    });
  }

  async function act(path, body, after) {
    try { const r = await api("POST", `/tickets/${state.current}${path}`, body); if (after) after(r); }
    catch (e) { toast("✖ " + e.message, true); }
    await refreshInbox();
    if (state.current) await openTicket(state.current);
  }

  async function send() {
    const text = $("reply").value.trim();
    if (!text || !state.current) return;
    $("send").disabled = true; $("send-error").textContent = "";
    try {
      const r = await api("POST", `/tickets/${state.current}/messages`, { text });
      $("reply").value = "";
      if (r.deferred) toast("⏳ 客户下次发消息时送达 Queued: " + r.deferred, true);
    } catch (e) {
      $("send-error").textContent = "发送失败 Not delivered: " + e.message;
    } finally {
      $("send").disabled = false;
      await openTicket(state.current);
    }
  }

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const me = await api("POST", "/login", { name: $("login-name").value.trim(), password: $("login-password").value });
      $("login-password").value = "";
      await start(me);
    } catch (e) { $("login-error").textContent = e.status === 401 ? "账号或密码错误 · Wrong name or password" : e.message; }
  });
  $("logout").addEventListener("click", async () => { try { await api("POST", "/logout"); } catch (e) { /* ignore */ } showLogin(); });
  $("claim").addEventListener("click", () => claim(state.current));
  $("send").addEventListener("click", send);
  $("reply").addEventListener("keydown", (ev) => { if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) send(); });
  let typingSent = 0;  // the customer sees "the agent is typing"; told at most every 2 s
  $("reply").addEventListener("input", () => {
    if (!state.current || Date.now() - typingSent < 2000 || !$("reply").value.trim()) return;
    typingSent = Date.now();
    api("POST", `/tickets/${state.current}/typing`, {}).catch(() => { /* only a hint */ });
  });
  $("canned").addEventListener("change", () => {
    if (!$("canned").value) return;
    const r = $("reply"); r.value = (r.value ? r.value + "\n" : "") + $("canned").value; $("canned").value = ""; r.focus();
  });
  $("note-add").addEventListener("click", () => {
    const text = $("note-text").value.trim();
    if (text) act("/notes", { text }, () => { $("note-text").value = ""; });
  });
  $("transfer").addEventListener("click", () => {
    const to = $("transfer-to").value;
    if (to && confirm(`转接给 Transfer to ${to}?`)) act("/transfer", { to }, () => toast("已转接 Transferred to " + to));
  });
  $("handback").addEventListener("click", () => act("/handback", undefined, () => toast("已转回机器人 Handed back")));
  $("resolve").addEventListener("click", () => act("/resolve", undefined, () => toast("已解决，已邀请客户评价 Resolved; survey sent")));
  $("followup").addEventListener("click", () => {
    const minutes = Number($("followup-minutes").value);
    const text = $("reply").value.trim() || $("note-text").value.trim();
    act("/followups", { minutes, text }, () => toast(`⏰ ${minutes} 分钟后提醒您 Reminder set`));
  });
  setInterval(() => { if (state.inbox) refreshInbox(); }, 30000);

  fetch("/api/agent/me", { credentials: "same-origin" }).then(async (r) => {
    if (r.ok) start(await r.json()); else showLogin();
  }).catch(showLogin);
})();
