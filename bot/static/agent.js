/* The agent console (/agent): inbox, chat, context, resolved search, team view, agent management.
   Everything goes through the REST API under /api/agent (session cookie + X-CSRF-Token); live
   updates arrive over server-sent events, and the inbox is re-read whenever the stream reconnects. */
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { me: null, csrf: "", role: "", current: null, detail: null, inbox: null, agents: [], groups: [],
                  canned: [], source: null, tab: "desk", slash: [], slashAt: 0 };
  const REASON = { complaint: "投诉 Complaint", human_request: "要求人工 Asked for agent",
                   repeated_failure: "多次未解答 Bot failed", low_confidence: "机器人没把握 Bot unsure" };
  const STATUS = { online: "在线 online", busy: "忙碌 busy", away: "离开 away", offline: "离线 offline" };
  const CATEGORIES = ["咨询 Question", "投诉 Complaint", "退换货 Return/exchange", "物流 Delivery", "支付 Payment",
                      "质量问题 Quality", "其他 Other"];

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function button(text, cls, onClick) {
    const b = el("button", cls, text);
    b.type = "button";
    b.addEventListener("click", (ev) => { ev.stopPropagation(); onClick(); });
    return b;
  }
  function ago(ts) {
    const s = Math.max(0, Math.floor(Date.now() / 1000 - ts));
    if (s < 60) return s + "秒 s";
    if (s < 3600) return Math.floor(s / 60) + "分 min";
    return Math.floor(s / 3600) + "时 h " + Math.floor((s % 3600) / 60) + "分";
  }
  function seconds(s) { return s === null || s === undefined ? "—" : (s < 60 ? s + " s" : Math.round(s / 60) + " min"); }
  function who(t) { return t.customer_name || `${t.channel} 访客 visitor ${t.user_id.slice(0, 8)}`; }
  function clock(ts) { return new Date(ts * 1000).toLocaleTimeString(); }
  function day(ts) { return new Date(ts * 1000).toLocaleString(); }

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
  function notify(text, calm) {
    toast(text, !calm);
    if ("Notification" in window && Notification.permission === "granted") new Notification("Kefu", { body: text });
  }

  function showLogin() {
    if (state.source) { state.source.close(); state.source = null; }
    state.current = null; state.detail = null; state.inbox = null; state.filledFor = null;
    $("chat-head").hidden = true; $("composer").hidden = true; $("ctx").hidden = true; $("ctx-empty").hidden = false;
    $("transcript").replaceChildren(el("div", "", "从左侧选择一个会话 · Pick a ticket on the left"));
    $("transcript").firstChild.id = "placeholder";
    ["csat", "my-csat", "my-load", "whoami"].forEach((id) => { $(id).textContent = ""; });
    document.body.classList.remove("admin");
    showTab("desk");
    $("app").classList.remove("on");
    $("login").style.display = "";
    $("logout").hidden = true; $("status").hidden = true; $("tabs").hidden = true;
  }

  async function start(me) {
    state.me = me.name; state.csrf = me.csrf; state.role = me.role;
    $("login").style.display = "none";
    $("app").classList.add("on");
    $("logout").hidden = false; $("status").hidden = false; $("tabs").hidden = false;
    document.body.classList.toggle("admin", me.role === "admin");
    $("whoami").textContent = me.name + (me.role === "admin" ? " (管理员 admin)" : "");
    const [agents, canned] = await Promise.all([api("GET", "/agents"), api("GET", "/canned")]);
    state.agents = agents.agents; state.groups = agents.groups || []; state.canned = canned.canned;
    const sel = $("canned");
    sel.length = 1;
    canned.canned.forEach((c) => { const o = el("option", "", c.title); o.value = c.text; sel.appendChild(o); });
    const cat = $("wrap-category");
    cat.replaceChildren(el("option", "", "分类 Category…"));
    cat.firstChild.value = "";
    CATEGORIES.forEach((c) => { const o = el("option", "", c); o.value = c; cat.appendChild(o); });
    await refreshInbox();
    const left = state.inbox ? state.inbox.queued.filter((t) => t.left_message).length : 0;
    if (left) toast(`有 ${left} 条客户留言等您回复 · ${left} message(s) left while nobody was online`, true);
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
    ["ticket", "resync"].forEach((t) => src.addEventListener(t, (ev) => {
      scheduleInbox(); refreshCurrent(); scheduleTeam();
      const data = ev.data ? JSON.parse(ev.data) : {};
      if (data.change === "assigned" && data.ticket && data.ticket.owner === state.me) {
        notify(`新会话已分配给您 New chat assigned: ${who(data.ticket)}`, true);
      }
    }));
    src.addEventListener("presence", scheduleTeam);
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
  let teamTimer = null;
  function scheduleTeam() { if (state.tab !== "team") return; clearTimeout(teamTimer); teamTimer = setTimeout(loadTeam, 200); }

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
    if (t.group) top.appendChild(el("span", "badge group", t.group));
    if (t.escalated && t.status === "queued") top.appendChild(el("span", "badge warn", "超时 SLA"));
    if (t.left_message) top.appendChild(el("span", "badge left", t.after_hours ? "留言 after hours" : "留言 message"));
    if (t.contact) top.appendChild(el("span", "badge", "☎"));
    top.appendChild(el("span", "wait", kind === "queued" ? "等待 " + ago(t.created_at) : (kind === "others" ? t.owner : "")));
    if (kind === "queued") top.appendChild(button("接入 Claim", "claim primary", () => claim(t.id)));
    div.appendChild(top);
    div.appendChild(el("div", "summary", who(t) + " · " + t.summary));
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
    $("status").value = data.status === "offline" ? "online" : data.status;
    $("status").className = $("status").value;
    $("my-load").textContent = `会话 Chats ${data.load}/${data.limit || "∞"}`;
    $("my-csat").textContent = data.csat && data.csat.count ? `我的满意度 My CSAT ★${data.csat.average} (${data.csat.count})` : "";
    state.groups = data.groups || state.groups;
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

  function fillTransfer(t) {
    /* nothing preselected: a transfer is always a deliberate choice */
    const sel = $("transfer-to");
    sel.replaceChildren();
    const none = el("option", "", "转接给… Transfer to…");
    none.value = "";
    sel.appendChild(none);
    const people = el("optgroup");
    people.label = "同事 Colleagues";
    state.agents.filter((a) => a.name !== t.owner && !a.disabled).forEach((a) => {
      const o = el("option", "", `${a.name} · ${STATUS[a.status] || a.status}`);
      o.value = "agent:" + a.name;
      people.appendChild(o);
    });
    sel.appendChild(people);
    if (state.groups.length) {
      const groups = el("optgroup");
      groups.label = "技能组 Groups";
      state.groups.forEach((g) => { const o = el("option", "", "组 " + g); o.value = "group:" + g; groups.appendChild(o); });
      sel.appendChild(groups);
    }
    sel.value = "";
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
    $("chat-title").title = $("chat-title").textContent;
    $("chat-status").textContent = t.status + (t.owner ? " · " + t.owner : "") + (d.position ? " · #" + d.position : "")
                                   + (t.rating ? " · ★" + t.rating : "");
    $("claim").hidden = t.status !== "queued";
    $("export").href = `/api/agent/tickets/${encodeURIComponent(id)}/export`;
    ["transfer", "transfer-to", "handback", "resolve"].forEach((b) => { $(b).hidden = !mine; });
    $("block").hidden = !(mine || t.status === "queued");
    $("composer").hidden = !mine;
    if (mine && state.filledFor !== id) {  /* once per ticket: keep what the agent has typed */
      state.filledFor = id;
      try { const a = await api("GET", "/agents"); state.agents = a.agents; state.groups = a.groups; } catch (e) { /* keep */ }
      fillTransfer(t);
      $("wrap-category").value = t.reason === "complaint" ? "投诉 Complaint" : "";
      $("wrap-tags").value = ""; $("wrap-outcome").value = "";
    }

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
      if (line.answer_entry !== undefined) div.appendChild(wrongAnswer(t.id, line));
      box.appendChild(div);
    });
    box.scrollTop = box.scrollHeight;
    renderContext(d, mine);
  }

  /* "The bot's answer was wrong": puts the question on the admin review list next to the entry used. */
  function wrongAnswer(ticketId, line) {
    const b = button("答错了 Wrong answer", "ghost wrong-answer", async () => {
      b.disabled = true;
      try {
        await api("POST", `/tickets/${ticketId}/wrong-answers`, { seq: line.seq });
        b.textContent = "已送审 Sent for review";
        toast("已放入管理员的待审列表 On the admin review list: " + (line.answer_entry || "—"), false);
      } catch (e) { b.disabled = false; toast("✖ " + e.message, true); }
    });
    b.title = "机器人用了知识条目 The bot used entry: " + (line.answer_entry || "—");
    b.dataset.seq = String(line.seq);
    return b;
  }

  function renderContext(d, mine) {
    const t = d.ticket;
    $("ctx-empty").hidden = true; $("ctx").hidden = false;
    $("ctx-summary").textContent = t.summary;
    const p = d.context.packet || {};
    const packet = $("ctx-packet");
    packet.replaceChildren();
    [["问了 Asked", (p.asked || []).join(" / ")],
     ["机器人答了 Bot answered", (p.bot_answered || []).map((a) => a.entry_id).join(", ")],
     ["不满 Unhappy about", p.unhappy_about || (t.reason === "complaint" ? t.detail : "")],
     ["想要 Wants", (p.wants || []).join("、")],
     ["客户类型 Type", p.customer_type_words || ""]]
      .filter(([, v]) => v).forEach(([k, v]) => { packet.appendChild(el("dt", "", k)); packet.appendChild(el("dd", "", v)); });
    const first = $("ctx-first");
    first.replaceChildren();
    if (p.first_words) {
      first.appendChild(el("div", "", "建议开场 Suggested first words: " + p.first_words));
      if (mine) first.appendChild(button("用这句 Use", "ghost", () => { $("reply").value = p.first_words; $("reply").focus(); }));
    }
    const dl = $("ctx-details");
    dl.replaceChildren();
    const profile = (d.conversation && d.conversation.profile) || d.context.profile || {};
    [["原因 Reason", `${REASON[t.reason] || t.reason}${t.detail ? " — " + t.detail : ""}`],
     ["渠道 Channel", t.channel], ["语言 Language", t.language], ["客户 Customer", `${profile.name || "—"} (${t.user_id})`],
     ["联系方式 Contact", t.contact || "—"], ["技能组 Group", t.group || "—"],
     ["首次 First seen", profile.first_seen ? new Date(profile.first_seen * 1000).toLocaleDateString() : "—"],
     ["会话数 Visits", String(profile.conversations || 1)], ["创建 Opened", clock(t.created_at) + " (" + ago(t.created_at) + ")"],
     ["服务时间 Hours", t.after_hours ? "非服务时间留言 after hours" : (t.left_message ? "无人在线时留言 left while nobody was online" : "服务时间内 in hours")]]
      .forEach(([k, v]) => { dl.appendChild(el("dt", "", k)); dl.appendChild(el("dd", "", v)); });
    const cands = $("ctx-candidates");
    cands.replaceChildren();
    const answers = d.candidate_answers || d.context.candidates || [];
    answers.forEach((c) => {
      const row = el("div", "cand-answer");
      const head = el("div", "cand");
      head.appendChild(el("span", "", c.question || c.entry_id));
      head.appendChild(el("span", "badge", Math.round(c.score * 100) + "%"));
      row.appendChild(head);
      if (c.answer) {
        row.appendChild(el("div", "a", c.answer));
        if (mine) row.appendChild(button("发送此答案 Send this answer", "ghost send-answer", () => sendText(c.answer)));
      }
      cands.appendChild(row);
    });
    if (!answers.length) cands.appendChild(el("div", "empty", "—"));
    renderCustomer(d);
    const earlier = $("ctx-earlier");
    earlier.replaceChildren();
    const before = d.customer ? d.customer.tickets.filter((e) => e.id !== t.id) : d.earlier_tickets;
    before.forEach((e) => earlier.appendChild(el("div", "cand",
      `${new Date(e.created_at * 1000).toLocaleDateString()} ${e.channel} ${REASON[e.reason] || e.reason} · ${e.status}`
      + `${e.wrapup && e.wrapup.outcome ? " · " + e.wrapup.outcome : ""}${e.rating ? " · ★" + e.rating : ""}`)));
    if (!before.length) earlier.appendChild(el("div", "empty", "首次 first ticket"));
    const notes = $("notes");
    notes.replaceChildren();
    d.notes.forEach((n) => {
      const div = el("div", "note " + (n.kind || ""));
      div.appendChild(el("div", "who", `${n.agent} · ${clock(n.at)}${n.kind && n.kind !== "note" ? " · " + n.kind : ""}`));
      div.appendChild(el("div", "", n.text));
      notes.appendChild(div);
    });
  }

  function renderCustomer(d) {
    const box = $("ctx-customer");
    box.replaceChildren();
    const c = d.customer;
    if (!c) return;
    box.appendChild(el("div", "", (c.name || who(d.ticket)) + (c.csat ? ` · ★${c.csat}` : "")));
    const ids = el("div", "ids");
    c.identities.forEach((i) => ids.appendChild(el("span", "badge", i)));
    box.appendChild(ids);
    Object.entries(c.attributes).forEach(([k, v]) => {
      const row = el("div", "attr", `${k}: ${v}`);
      row.appendChild(button("×", "ghost", () => patchCustomer({ attributes: { [k]: null } })));
      box.appendChild(row);
    });
    c.followups.forEach((f) => box.appendChild(el("div", "attr", `⏰ ${f.agent} · ${day(f.due)} · ${f.text || ""}`)));
    const slots = Object.entries((d.conversation && d.conversation.slots) || {});
    if (slots.length) {  /* what a business action (order lookup...) found or asked for */
      const card = el("dl", "order-card");
      card.appendChild(el("dt", "", "订单 Order"));
      card.appendChild(el("dd", "", ""));
      slots.forEach(([k, v]) => { card.appendChild(el("dt", "", k)); card.appendChild(el("dd", "", String(v))); });
      box.appendChild(card);
    }
  }
  async function patchCustomer(body) {
    const t = state.detail.ticket;
    try { await api("PATCH", `/customers/${encodeURIComponent(t.channel)}/${encodeURIComponent(t.user_id)}`, body); }
    catch (e) { toast("✖ " + e.message, true); }
    openTicket(state.current);
  }

  async function act(path, body, after) {
    try { const r = await api("POST", `/tickets/${state.current}${path}`, body); if (after) after(r); }
    catch (e) { toast("✖ " + e.message, true); }
    await refreshInbox();
    if (state.current) await openTicket(state.current);
  }

  async function sendText(text) {
    if (!text || !state.current) return;
    $("send").disabled = true; $("send-error").textContent = "";
    try {
      const r = await api("POST", `/tickets/${state.current}/messages`, { text });
      if (r.deferred) toast("⏳ 客户下次发消息时送达 Queued: " + r.deferred, true);
      return true;
    } catch (e) {
      $("send-error").textContent = "发送失败 Not delivered: " + e.message;
      return false;
    } finally {
      $("send").disabled = false;
      await openTicket(state.current);
    }
  }
  async function send() {
    const text = $("reply").value.trim();
    if (text && await sendText(text)) $("reply").value = "";
  }

  /* ----- canned replies: "/" opens a searchable list; {name} and {agent} are filled in ----- */
  function fill(text) {
    const t = state.detail ? state.detail.ticket : {};
    return text.replaceAll("{name}", t.customer_name || "").replaceAll("{agent}", state.me || "");
  }
  function slashQuery() {
    const r = $("reply");
    const before = r.value.slice(0, r.selectionStart);
    const m = before.match(/(^|\s)\/([^\s/]*)$/);
    return m ? { query: m[2].toLowerCase(), at: before.length - m[2].length - 1 } : null;
  }
  function updateSlash() {
    const q = slashQuery();
    const box = $("slash");
    if (!q) { box.hidden = true; return; }
    state.slash = state.canned.filter((c) => (c.title + " " + c.text).toLowerCase().includes(q.query)).slice(0, 8);
    state.slashAt = q.at;
    box.replaceChildren();
    state.slash.forEach((c, i) => {
      const item = el("div", "item" + (i === 0 ? " on" : ""));
      item.setAttribute("role", "option");
      item.appendChild(el("span", "t", c.title));
      item.appendChild(el("span", "x", fill(c.text).slice(0, 60)));
      item.addEventListener("mousedown", (ev) => { ev.preventDefault(); pickSlash(i); });
      box.appendChild(item);
    });
    box.hidden = !state.slash.length;
  }
  function pickSlash(i) {
    const c = state.slash[i];
    if (!c) return;
    const r = $("reply");
    const end = r.selectionStart;
    r.value = r.value.slice(0, state.slashAt) + fill(c.text) + r.value.slice(end);
    $("slash").hidden = true;
    r.focus();
  }
  function moveSlash(step) {
    const items = [...$("slash").children];
    const at = items.findIndex((n) => n.classList.contains("on"));
    const next = (at + step + items.length) % items.length;
    items.forEach((n, i) => n.classList.toggle("on", i === next));
  }

  /* ----- tabs: resolved search, team view, agent management ----- */
  function showTab(name) {
    state.tab = name;
    document.querySelectorAll("#tabs .tab").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
    $("app").classList.toggle("on", name === "desk" && !!state.me);
    $("resolved-view").hidden = name !== "resolved";
    $("team-view").hidden = name !== "team";
    $("people-view").hidden = name !== "people";
    if (name === "resolved") searchResolved();
    if (name === "team") loadTeam();
    if (name === "people") loadPeople();
  }

  async function searchResolved() {
    const params = new URLSearchParams();
    [["q", "rs-q"], ["customer", "rs-customer"], ["agent", "rs-agent"], ["tag", "rs-tag"], ["since", "rs-since"],
     ["until", "rs-until"]].forEach(([k, id]) => { if ($(id).value.trim()) params.set(k, $(id).value.trim()); });
    let data;
    try { data = await api("GET", "/resolved?" + params.toString()); } catch (e) { toast("✖ " + e.message, true); return; }
    const rows = $("resolved-rows");
    rows.replaceChildren();
    data.tickets.forEach((t) => {
      const tr = el("tr", "clickable");
      tr.dataset.id = t.id;
      const w = t.wrapup || {};
      [day(t.closed_at), who(t), REASON[t.reason] || t.reason, t.owner || "—",
       [w.category, (w.tags || []).join(", "), w.outcome].filter(Boolean).join(" · ") || "—",
       t.rating ? "★" + t.rating : "—", t.summary].forEach((v) => tr.appendChild(el("td", "", v)));
      tr.addEventListener("click", () => { showTab("desk"); openTicket(t.id); });
      rows.appendChild(tr);
    });
    $("resolved-empty").hidden = data.tickets.length > 0;
  }

  async function loadTeam() {
    let data;
    try { data = await api("GET", "/team"); } catch (e) { toast("✖ " + e.message, true); return; }
    $("team-summary").textContent = `在线 Online ${data.online} · 排队 Waiting ${data.queued}`
      + (data.escalated_waiting ? ` · 超时 SLA ${data.escalated_waiting}` : "") + ` · 近${data.days}天 last ${data.days} days`;
    const rows = $("team-rows");
    rows.replaceChildren();
    data.agents.forEach((a) => {
      const tr = el("tr");
      tr.dataset.agent = a.name;
      const status = el("td");
      status.appendChild(el("span", "dot " + a.status));
      status.appendChild(document.createTextNode(STATUS[a.status] || a.status));
      tr.appendChild(el("td", "", a.name + (a.disabled ? " (停用 disabled)" : "")));
      tr.appendChild(status);
      tr.appendChild(el("td", a.limit && a.load >= a.limit ? "warntext" : "", `${a.load}/${a.limit || "∞"}`));
      tr.appendChild(el("td", "", a.groups.join(", ") || "—"));
      tr.appendChild(el("td", "", seconds(a.first_response_seconds)));
      tr.appendChild(el("td", a.sla_breaches ? "warntext" : "", String(a.sla_breaches)));
      tr.appendChild(el("td", "", a.csat ? "★" + a.csat : "—"));
      tr.appendChild(el("td", "", String(a.resolved)));
      const open = el("td");
      a.open.forEach((t) => {
        const line = el("div", "", who(t) + " ");
        const sel = el("select", "mini");
        sel.setAttribute("aria-label", "reassign");
        const none = el("option", "", "改派 Reassign…");
        none.value = "";
        sel.appendChild(none);
        data.agents.filter((b) => b.name !== a.name && !b.disabled).forEach((b) => {
          const o = el("option", "", b.name); o.value = b.name; sel.appendChild(o);
        });
        sel.addEventListener("change", async () => {
          if (!sel.value) return;
          try { await api("POST", `/tickets/${t.id}/reassign`, { to: sel.value }); toast(`已改派 Reassigned to ${sel.value}`); }
          catch (e) { toast("✖ " + e.message, true); }
          loadTeam();
        });
        line.appendChild(sel);
        open.appendChild(line);
      });
      tr.appendChild(open);
      rows.appendChild(tr);
    });
  }

  async function loadBlocked() {
    let data;
    try { data = await api("GET", "/blocked"); } catch (e) { return; }
    const rows = $("blocked-rows");
    rows.replaceChildren();
    data.blocked.forEach((b) => {
      const tr = el("tr");
      [`${b.name || "—"} (${b.channel}:${b.user_id})`, b.reason, b.by, day(b.at)].forEach((v) => tr.appendChild(el("td", "", v)));
      const td = el("td");
      td.appendChild(button("解除 Unblock", "ghost mini", async () => {
        try { await api("DELETE", `/blocked/${encodeURIComponent(b.channel)}/${encodeURIComponent(b.user_id)}`); toast("已解除 Unblocked"); }
        catch (e) { toast("✖ " + e.message, true); }
        loadBlocked();
      }));
      tr.appendChild(td);
      rows.appendChild(tr);
    });
    if (!data.blocked.length) { const tr = el("tr"); tr.appendChild(el("td", "empty", "—")); rows.appendChild(tr); }
  }

  async function loadPeople() {
    loadBlocked();
    let data;
    try { data = await api("GET", "/agents"); } catch (e) { toast("✖ " + e.message, true); return; }
    state.agents = data.agents;
    const rows = $("people-rows");
    rows.replaceChildren();
    data.agents.forEach((a) => {
      const tr = el("tr");
      tr.dataset.agent = a.name;
      tr.appendChild(el("td", "", a.name + (a.configured ? " (config)" : "")));
      const shown = el("input", "mini");
      shown.value = a.display_name || ""; shown.maxLength = 32; shown.placeholder = a.name;
      shown.setAttribute("aria-label", "display name");
      const role = el("select", "mini");
      role.setAttribute("aria-label", "role");
      ["agent", "admin"].forEach((r) => { const o = el("option", "", r); o.value = r; role.appendChild(o); });
      role.value = a.role;
      const groups = el("input", "mini");
      groups.value = a.groups.join(", ");
      groups.setAttribute("aria-label", "groups");
      const max = el("input", "mini");
      max.type = "number"; max.min = "0"; max.max = "100"; max.value = String(a.max_chats || 0);
      max.setAttribute("aria-label", "max chats");
      [shown, role, groups, max].forEach((c) => { c.disabled = a.configured; const td = el("td"); td.appendChild(c); tr.appendChild(td); });
      tr.appendChild(el("td", "", a.disabled ? "停用 disabled" : (STATUS[a.status] || a.status)));
      const actions = el("td");
      if (!a.configured) {
        const patch = async (body, done) => {
          try { await api("PATCH", `/agents/${encodeURIComponent(a.name)}`, body); toast(done); }
          catch (e) { toast("✖ " + e.message, true); }
          loadPeople();
        };
        actions.appendChild(button("保存 Save", "ghost mini save", () => patch({
          role: role.value, display_name: shown.value.trim(), groups: groups.value.split(/[,，\s]+/).filter(Boolean), max_chats: Number(max.value) || 0,
        }, `已保存 Saved ${a.name}`)));
        actions.appendChild(button(a.disabled ? "启用 Enable" : "停用 Disable", "ghost mini toggle",
                                   () => patch({ disabled: !a.disabled }, `${a.name}: ${a.disabled ? "enabled" : "disabled"}`)));
        actions.appendChild(button("重置密码 Reset password", "ghost mini reset", () => {
          const password = prompt(`${a.name} 的新密码 New password (8+)`);
          if (password) patch({ password }, `已重置 Password reset for ${a.name}`);
        }));
      }
      tr.appendChild(actions);
      rows.appendChild(tr);
    });
  }

  /* ----- wiring ----- */
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
  $("status").addEventListener("change", async () => {
    try { await api("POST", "/status", { status: $("status").value }); } catch (e) { toast("✖ " + e.message, true); }
    refreshInbox();
  });
  document.querySelectorAll("#tabs .tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("resolved-search").addEventListener("submit", (ev) => { ev.preventDefault(); searchResolved(); });
  $("agent-add").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = { name: $("add-name").value.trim(), password: $("add-password").value, role: $("add-role").value,
                   display_name: $("add-display").value.trim(), groups: $("add-groups").value.split(/[,，\s]+/).filter(Boolean) };
    if ($("add-max").value) body.max_chats = Number($("add-max").value);
    try { await api("POST", "/agents", body); toast(`已添加 Added ${body.name}`); $("agent-add").reset(); }
    catch (e) { toast("✖ " + e.message, true); }
    loadPeople();
  });
  $("claim").addEventListener("click", () => claim(state.current));
  $("send").addEventListener("click", send);
  $("reply").addEventListener("keydown", (ev) => {
    if (!$("slash").hidden) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") { ev.preventDefault(); moveSlash(ev.key === "ArrowDown" ? 1 : -1); return; }
      if (ev.key === "Enter" || ev.key === "Tab") {
        ev.preventDefault();
        pickSlash([...$("slash").children].findIndex((n) => n.classList.contains("on")));
        return;
      }
      if (ev.key === "Escape") { $("slash").hidden = true; return; }
    }
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) send();
  });
  $("reply").addEventListener("input", updateSlash);
  let typingSent = 0;  // the customer sees "the agent is typing"; told at most every 2 s
  $("reply").addEventListener("input", () => {
    if (!state.current || Date.now() - typingSent < 2000 || !$("reply").value.trim()) return;
    typingSent = Date.now();
    api("POST", `/tickets/${state.current}/typing`, {}).catch(() => { /* only a hint */ });
  });
  $("reply").addEventListener("blur", () => { $("slash").hidden = true; });
  $("canned").addEventListener("change", () => {
    if (!$("canned").value) return;
    const r = $("reply"); r.value = (r.value ? r.value + "\n" : "") + fill($("canned").value); $("canned").value = ""; r.focus();
  });
  $("note-add").addEventListener("click", () => {
    const text = $("note-text").value.trim();
    if (text) act("/notes", { text }, () => { $("note-text").value = ""; });
  });
  $("transfer").addEventListener("click", () => {
    const choice = $("transfer-to").value;
    if (!choice) { toast("请先选择转接对象 Pick a colleague or a group first", true); return; }
    const [kind, name] = [choice.slice(0, choice.indexOf(":")), choice.slice(choice.indexOf(":") + 1)];
    const body = kind === "group" ? { group: name } : { to: name };
    if (confirm(`转接给 Transfer to ${kind === "group" ? "组 group " : ""}${name}?`)) {
      act("/transfer", body, () => toast("已转接 Transferred to " + name));
    }
  });
  $("block").addEventListener("click", () => {
    const reason = prompt("拉黑原因（同事可见）· Why block this customer? (colleagues see it)");
    if (reason && reason.trim()) act("/block", { reason: reason.trim() }, () => toast("已拉黑 Blocked"));
  });
  $("attr-add").addEventListener("click", () => {
    const text = $("attr-text").value;
    const at = text.search(/[=:：]/);
    if (at < 1) { toast("请写成 key=value · write key=value", true); return; }
    patchCustomer({ attributes: { [text.slice(0, at).trim()]: text.slice(at + 1).trim() } });
    $("attr-text").value = "";
  });
  $("link-add").addEventListener("click", async () => {
    const identity = $("link-text").value.trim();
    if (!identity) return;
    const t = state.detail.ticket;
    try {
      await api("POST", `/customers/${encodeURIComponent(t.channel)}/${encodeURIComponent(t.user_id)}/link`, { identity });
      $("link-text").value = ""; toast("已关联 Linked " + identity);
    } catch (e) { toast("✖ " + e.message, true); }
    openTicket(state.current);
  });
  $("handback").addEventListener("click", () => act("/handback", undefined, () => toast("已转回机器人 Handed back")));
  $("resolve").addEventListener("click", () => {
    const wrapup = { category: $("wrap-category").value, outcome: $("wrap-outcome").value.trim(),
                     tags: $("wrap-tags").value.split(/[,，、]+/).map((x) => x.trim()).filter(Boolean) };
    act("/resolve", { wrapup }, () => toast("已解决，已邀请客户评价 Resolved; survey sent"));
  });
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
