// Kefu admin console: plain JS, no build step. Talks to /api/admin/... with the agent console's
// session cookie and CSRF token. Everything user-provided is inserted as text, never as HTML.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let csrf = "";
  let current = null; // the entry being edited (null: a new one)
  let entries = [];
  let pendingImport = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "style") node.style.cssText = v;  // CSSOM: allowed under a strict CSP, unlike a style attribute
      else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, data) { super(data.error || ("HTTP " + status)); this.status = status; this.data = data; }
  }

  async function call(method, path, body, raw) {
    const headers = {};
    if (method !== "GET") headers["X-CSRF-Token"] = csrf;
    let payload;
    if (raw !== undefined) { payload = raw; headers["Content-Type"] = "application/octet-stream"; }
    else if (body !== undefined) { payload = JSON.stringify(body); headers["Content-Type"] = "application/json"; }
    const r = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
    const data = await r.json().catch(() => ({}));
    if (r.status === 401 && path !== "/api/agent/login") showLogin();
    if (!r.ok) throw new ApiError(r.status, data);
    return data;
  }
  const admin = (method, path, body, raw) => call(method, "/api/admin" + path, body, raw);

  function time(at) { return new Date(at * 1000).toLocaleString(); }

  // ------------------------------------------------------------------ login
  function showLogin(message) {
    $("login").hidden = false; $("app").hidden = true; $("tabs").hidden = true; $("logout").hidden = true;
    $("login-error").textContent = message || "";
  }
  async function enter(me) {
    if (me.role !== "admin") {
      showLogin("需要管理员权限 · Admins only: " + me.name + " is an agent");
      return;
    }
    csrf = me.csrf;
    $("login").hidden = true; $("app").hidden = false; $("tabs").hidden = false; $("logout").hidden = false;
    $("who").textContent = me.name;
    await loadEntries();
    await refreshStatus();
  }
  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const me = await call("POST", "/api/agent/login", { name: $("login-name").value.trim(), password: $("login-password").value });
      $("login-password").value = "";
      await enter(me);
    } catch (e) { $("login-error").textContent = e.status === 401 ? "账号或密码错误 · Wrong name or password" : e.message; }
  });
  $("logout").addEventListener("click", async () => {
    await call("POST", "/api/agent/logout").catch(() => null);
    showLogin();
  });

  async function refreshStatus() {
    try {
      const s = await admin("GET", "/status");
      $("status").textContent = "知识库版本 version " + s.version + " · " + s.entries + " 条 entries";
    } catch (e) { /* shown elsewhere */ }
  }

  // ------------------------------------------------------------------ tabs
  for (const button of document.querySelectorAll("#tabs button")) {
    button.addEventListener("click", () => openTab(button.dataset.tab));
  }
  function openTab(name) {
    for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === name);
    for (const t of document.querySelectorAll(".tab")) t.hidden = t.id !== "tab-" + name;
    if (name === "unanswered") loadClusters();
    if (name === "audit") loadAudit();
    if (name === "dashboard") loadDashboard();
  }

  // ------------------------------------------------------------------ knowledge list and editor
  async function loadEntries() {
    const q = encodeURIComponent($("search").value.trim());
    const tag = encodeURIComponent($("tag-filter").value);
    const data = await admin("GET", "/entries?q=" + q + "&tag=" + tag);
    entries = data.entries;
    const select = $("tag-filter");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "全部标签 All tags"),
      ...data.tags.map((t) => el("option", { value: t, selected: t === chosen }, t)));
    $("entries").replaceChildren(...entries.map((e) => el("div", {
      class: "entry" + (e.enabled ? "" : " off") + (current && current.id === e.id ? " on" : ""),
      "data-id": e.id, onclick: () => edit(e.id),
    }, el("div", {}, e.questions[0]), el("div", { class: "id" }, e.id, e.enabled ? "" : " · 停用 disabled"),
      el("div", {}, e.tags.map((t) => el("span", { class: "tag" }, t))))));
  }
  let searchTimer = null;
  $("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(loadEntries, 200); });
  $("tag-filter").addEventListener("change", loadEntries);

  function fill(entry) {
    const answer = typeof entry.answer === "string" ? { zh: entry.answer } : (entry.answer || {});
    $("f-id").value = entry.id || "";
    $("f-questions").value = (entry.questions || []).join("\n");
    $("f-answer-zh").value = answer.zh || "";
    $("f-answer-en").value = answer.en || "";
    $("f-tags").value = (entry.tags || []).join(", ");
    $("f-action").value = entry.action || "";
    $("f-enabled").checked = entry.enabled !== false;
  }
  function formEntry() {
    const answer = {};
    if ($("f-answer-zh").value.trim()) answer.zh = $("f-answer-zh").value.trim();
    if ($("f-answer-en").value.trim()) answer.en = $("f-answer-en").value.trim();
    const entry = {
      id: $("f-id").value.trim(),
      questions: $("f-questions").value.split("\n").map((s) => s.trim()).filter(Boolean),
      tags: $("f-tags").value.split(/[,，]/).map((s) => s.trim()).filter(Boolean),
      enabled: $("f-enabled").checked,
    };
    if (Object.keys(answer).length) entry.answer = answer;
    if ($("f-action").value.trim()) entry.action = $("f-action").value.trim();
    return entry;
  }
  function clearErrors() {
    $("editor-error").textContent = "";
    $("editor-error").removeAttribute("data-field");
    for (const n of document.querySelectorAll(".invalid")) n.classList.remove("invalid");
  }
  function showError(e) {
    $("editor-error").textContent = e.message;
    const field = e.data && e.data.field;
    if (field) {
      $("editor-error").setAttribute("data-field", field);
      const inputs = { id: ["f-id"], questions: ["f-questions"], answer: ["f-answer-zh", "f-answer-en"],
                       tags: ["f-tags"], action: ["f-action"], enabled: ["f-enabled"] }[field] || [];
      for (const id of inputs) $(id).classList.add("invalid");
    }
  }
  function openEditor(entry, isNew) {
    current = isNew ? null : entry;
    clearErrors();
    fill(entry);
    $("editor").hidden = false; $("editor-empty").hidden = true;
    $("f-id").readOnly = !isNew;
    $("delete").hidden = isNew;
    $("editor-title").textContent = isNew ? "新建条目 New entry" : "编辑 Edit · " + entry.id;
    $("saved").textContent = ""; $("notice").textContent = ""; $("preview-result").replaceChildren();
    waitToken++; acknowledged = "";
    for (const n of document.querySelectorAll(".entry")) n.classList.toggle("on", !isNew && n.dataset.id === entry.id);
    if (isNew) $("history").replaceChildren(); else loadHistory(entry.id);
  }
  async function edit(id) {
    const data = await admin("GET", "/entries/" + encodeURIComponent(id));
    openEditor(data.entry, false);
  }
  $("new-entry").addEventListener("click", () => openEditor({ questions: [], answer: {}, tags: [], enabled: true }, true));

  // A write counts as saved for customers only once every worker answers from its version:
  // until then the line says how many do; it also names the version that undoes the write.
  let waitToken = 0;
  async function announce(target, prefix, result) {
    const token = ++waitToken;
    const undo = result.undo_version !== undefined ? " · 撤销 Undo: 回滚到 roll back to v" + result.undo_version : "";
    const show = (tail, live) => {
      if (token !== waitToken) return;
      $(target).textContent = prefix + " · version " + result.version + tail + undo;
      $(target).dataset.live = live ? String(result.version) : "";
    };
    show(" · 正在生效 reaching every worker…", false);
    const deadline = Date.now() + 30000;
    while (token === waitToken) {
      const s = await admin("GET", "/status").catch(() => null);
      if (s) {
        const behind = s.workers.filter((w) => w.version < result.version);
        const n = s.workers.length;
        if (!behind.length) { show(" · 所有 " + n + " 个实例已生效 every worker (" + n + ") answers with it", true); return; }
        if (Date.now() > deadline) {
          show(" · " + behind.length + "/" + n + " 个实例仍是旧版本 worker(s) still answer from v" +
               Math.min(...behind.map((w) => w.version)), false);
          return;
        }
        show(" · 正在生效 reaching every worker (" + (n - behind.length) + "/" + n + ")…", false);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }

  // Problems (a question another entry has) block the save; warnings (one language of the
  // answer changed, the other not) are shown and a second click on Save saves anyway.
  let acknowledged = "";
  $("editor").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearErrors();
    const entry = formEntry();
    try {
      const check = await admin("POST", "/validate", entry);
      if (check.problems.length) {
        showError({ message: check.problems.join("\n"), data: { field: "questions" } });
        return;
      }
      const state = JSON.stringify(entry);
      if (check.warnings.length && acknowledged !== state) {
        acknowledged = state;
        $("editor-error").textContent = check.warnings.join("\n") + "\n再点一次保存即可保存 Click Save again to save anyway.";
        $("editor-error").setAttribute("data-field", "answer");
        return;
      }
      acknowledged = "";
      const result = current
        ? await admin("PUT", "/entries/" + encodeURIComponent(current.id), entry)
        : await admin("POST", "/entries", entry);
      await loadEntries();
      await edit(entry.id);
      await refreshStatus();
      if (result.changes.length) announce("saved", "已保存 Saved", result);
      else $("saved").textContent = "没有改动 No changes";
    } catch (e) { showError(e); }
  });
  $("delete").addEventListener("click", async () => {
    if (!current || !confirm("删除 Delete " + current.id + "?")) return;
    const id = current.id;
    try {
      const result = await admin("DELETE", "/entries/" + encodeURIComponent(id));
      current = null; $("editor").hidden = true; $("editor-empty").hidden = false;
      await loadEntries(); await refreshStatus();
      announce("notice", "已删除 Deleted " + id, result);
    } catch (e) { showError(e); }
  });
  $("preview").addEventListener("click", async () => {
    clearErrors();
    $("preview-result").replaceChildren(el("p", { class: "muted" }, "正在回放最近的问题 Replaying recent questions…"));
    try {
      renderReplay(await admin("POST", "/preview", { entry: formEntry() }), $("preview-result"));
    } catch (e) { $("preview-result").replaceChildren(); showError(e); }
  });

  function outcomeText(d) {
    if (d.entry_id) return d.action + " → " + d.entry_id;
    if (d.suggestions && d.suggestions.length) return d.action + " → " + d.suggestions.join(" / ");
    return d.action + (d.reason ? " (" + d.reason + ")" : "");
  }
  function renderReplay(result, target) {
    const head = result.changed.length
      ? el("div", { class: "changed" }, "回放 " + result.replayed + " 个最近的问题，" + result.changed.length +
          " 个的回答会改变 · Replayed " + result.replayed + " recent questions; " + result.changed.length + " would change:")
      : el("div", { class: "ok" }, "回放 " + result.replayed + " 个最近的问题，没有回答改变 · Replayed " + result.replayed +
          " recent questions; no answer changes");
    const rows = result.changed.map((c) => el("tr", {}, el("td", {}, c.text), el("td", {}, outcomeText(c.before)),
      el("td", {}, outcomeText(c.after))));
    target.replaceChildren(head, rows.length ? el("table", { class: "replay" },
      el("tr", {}, el("th", {}, "问题 Question"), el("th", {}, "现在 Now"), el("th", {}, "改后 After")), rows) : "");
  }

  function describe(r) {
    const fields = (r.fields || []).join(", ");
    return r.action + " " + r.entry_id + (fields ? " [" + fields + "]" : "") + (r.note ? " — " + r.note : "");
  }
  async function loadHistory(id) {
    const data = await admin("GET", "/entries/" + encodeURIComponent(id) + "/history");
    $("history").replaceChildren(...data.history.map((r) => el("div", { class: "version", "data-version": r.version },
      el("b", {}, "v" + r.version), el("span", { class: "what" }, describe(r)),
      el("span", { class: "muted" }, r.who + " · " + time(r.at)),
      el("button", { class: "ghost rollback", type: "button", title: "Put this entry back as it was before this change",
        onclick: () => rollbackEntry(id, r.version - 1) }, "撤销此修改 Undo this change"))));
    if (!data.history.length) $("history").replaceChildren(el("p", { class: "muted" }, "还没有修改记录 No changes yet"));
  }
  async function rollbackEntry(id, version) {
    try {
      const result = await admin("POST", "/entries/" + encodeURIComponent(id) + "/rollback", { version });
      await loadEntries(); await refreshStatus();
      if (entries.some((e) => e.id === id)) await edit(id);
      else { current = null; $("editor").hidden = true; $("editor-empty").hidden = false; }
      announce(entries.some((e) => e.id === id) ? "saved" : "notice", "已回滚 Rolled back", result);
    } catch (e) { showError(e); }
  }

  // ------------------------------------------------------------------ try it
  $("try-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("try-text").value.trim();
    if (!text) return;
    try {
      const r = await admin("POST", "/try", { text });
      const d = r.decision;
      $("try-result").replaceChildren(el("div", { class: "decision" },
        el("div", {}, "决定 Decision: ", el("span", { class: "action" }, outcomeText(d)),
          " · 置信度 confidence " + d.confidence.toFixed(3) + " · " + d.language + " · version " + r.version),
        d.reason ? el("div", { class: "muted" }, "原因 Why: " + d.reason + (d.detail ? " — " + d.detail : "")) : "",
        el("div", { class: "replies" }, r.replies.map((t) => el("p", { class: "reply" }, t))),
        el("table", {}, el("tr", {}, el("th", {}, "候选 Candidate"), el("th", {}, "得分 Score"), el("th", {}, "最近的问法 Closest phrasing")),
          d.candidates.map((c) => el("tr", {}, el("td", {}, c.entry_id),
            el("td", {}, el("span", { class: "bar", style: "width:" + Math.round(c.score * 120) + "px" }), " " + c.score.toFixed(3)),
            el("td", {}, c.question))))));
    } catch (e) { $("try-result").replaceChildren(el("p", { class: "changed" }, e.message)); }
  });

  // ------------------------------------------------------------------ unanswered
  /* Why a question is on the list; the verdicts on answers (bot/review.py) name the entry used. */
  const REVIEW_REASONS = { thumbs_down: "客户点了没用 customer: not helpful", agent_wrong: "客服判定答错 agent: wrong answer",
                           disputed: "客户质疑答案 customer disputed the answer" };
  async function loadClusters() {
    const data = await admin("GET", "/unanswered");
    const all = await admin("GET", "/entries");
    $("unanswered-total").textContent = data.total + " 个问题 questions · " + data.clusters.length + " 类 clusters";
    $("clusters").replaceChildren(...data.clusters.map((c) => {
      const select = el("select", { class: "target" }, el("option", { value: "" }, "选择条目 Choose an entry…"),
        all.entries.map((e) => el("option", { value: e.id, selected: e.id === c.suggested_entry }, e.id + " — " + e.questions[0])));
      const result = el("div", { class: "cluster-result" });
      const questions = c.phrasings.map((p) => p.text);
      return el("div", { class: "cluster", "data-id": c.id },
        el("div", {}, el("span", { class: "count" }, c.count), " ", el("b", {}, c.label),
          el("span", { class: "muted reasons" }, " · " + Object.entries(c.reasons).map(([k, v]) => (REVIEW_REASONS[k] || k) + " ×" + v).join(", "))),
        el("ul", {}, c.phrasings.map((p) => el("li", {}, p.text + (p.count > 1 ? " ×" + p.count : "")))),
        el("div", { class: "row" }, select,
          el("button", { class: "ghost check", type: "button", onclick: async () => {
            if (!select.value) { result.textContent = "请先选择条目 Choose an entry first"; return; }
            renderReplay(await admin("POST", "/preview", { add_questions: { entry_id: select.value, questions } }), result);
          } }, "回归检查 Regression check"),
          el("button", { class: "primary add-to-entry", type: "button", onclick: async () => {
            if (!select.value) { result.textContent = "请先选择条目 Choose an entry first"; return; }
            try {
              const r = await admin("POST", "/unanswered/apply", { entry_id: select.value, questions });
              result.replaceChildren(el("div", { class: "ok" }, "已添加为相似问法 Added to " + select.value + " · version " + r.version));
              await loadEntries(); await refreshStatus();
              setTimeout(loadClusters, 1500);
            } catch (e) { result.textContent = e.message; }
          } }, "加入该条目 Add to entry"),
          el("button", { class: "ghost draft", type: "button", onclick: async () => {
            const r = await admin("POST", "/unanswered/draft", { questions });
            openTab("knowledge"); openEditor(r.entry, true);
          } }, "起草新条目 Draft new entry")),
        result);
    }));
    if (!data.clusters.length) $("clusters").replaceChildren(el("p", { class: "muted" }, "没有未解决的问题 Nothing unanswered"));
  }
  $("reload-unanswered").addEventListener("click", loadClusters);

  // ------------------------------------------------------------------ import / export
  async function sendImport(dryRun, replaceAll) {
    $("import-error").textContent = ""; $("import-result").replaceChildren();
    const file = $("import-file").files[0];
    if (!file) { $("import-error").textContent = "请选择文件 Choose a file"; return; }
    const q = "?filename=" + encodeURIComponent(file.name) + "&mode=" + $("import-mode").value +
      (dryRun ? "&dry_run=1" : "") + (replaceAll ? "&replace_all=1" : "");
    try {
      const r = await admin("POST", "/import" + q, undefined, await file.arrayBuffer());
      const list = (title, items, fmt) => items.length ? el("div", {}, el("h4", {}, title + " (" + items.length + ")"),
        el("ul", {}, items.map((i) => el("li", {}, fmt(i))))) : "";
      $("import-result").replaceChildren(
        el("div", { class: r.dry_run ? "changed" : "ok" }, (r.dry_run ? "预览（未导入）Dry run (nothing imported): " : "已导入 Imported · version " + r.version +
          (r.undo_version !== undefined ? " · 撤销 Undo: 回滚到 roll back to v" + r.undo_version : "") + ": ") +
          r.added.length + " 新增 added, " + r.changed.length + " 修改 changed, " + r.removed.length + " 删除 removed, " + r.unchanged + " 不变 unchanged"),
        list("新增 Added", r.added, (e) => e.id + " — " + e.questions[0]),
        list("修改 Changed", r.changed, (c) => c.id + " [" + c.fields.join(", ") + "]"),
        list("删除 Removed", r.removed, (e) => e.id + " — " + e.questions[0]));
      pendingImport = dryRun ? file : null;
      $("import-apply").disabled = !dryRun;
      if (!dryRun) { await loadEntries(); await refreshStatus(); }
    } catch (e) {
      // a replace that would remove many entries (or all) asks first; the server names them
      if (e.status === 409 && e.data.needs === "replace_all" && !replaceAll &&
          confirm(e.message + "\n\n仍然导入并删除? Import and remove them anyway?")) return sendImport(false, true);
      $("import-error").textContent = e.message;
      $("import-apply").disabled = true;
    }
  }
  $("import-dry").addEventListener("click", () => sendImport(true));
  $("import-apply").addEventListener("click", () => { if (pendingImport) sendImport(false); });
  $("import-file").addEventListener("change", () => { $("import-apply").disabled = true; pendingImport = null; });

  // ------------------------------------------------------------------ audit
  async function loadAudit() {
    const data = await admin("GET", "/history");
    $("audit").replaceChildren(...data.history.map((r) => el("div", { class: "version", "data-version": r.version },
      el("b", {}, "v" + r.version), el("span", { class: "what" }, describe(r)),
      el("span", { class: "muted" }, r.who + " · " + time(r.at)),
      el("button", { class: "ghost rollback-all", type: "button", onclick: async () => {
        if (!confirm("把整个知识库回滚到 v" + r.version + " 之前? Roll the whole knowledge base back to before this change?")) return;
        const result = await admin("POST", "/rollback", { version: r.version - 1 });
        await loadAudit(); await loadEntries(); await refreshStatus();
        if (result.changes.length) announce("audit-notice", "已回滚整库 Knowledge base rolled back", result);
      } }, "整库回滚到此修改之前 Roll KB back to before this"))));
    if (!data.history.length) $("audit").replaceChildren(el("p", { class: "muted" }, "还没有修改记录 No changes yet"));
  }

  // ------------------------------------------------------------------ dashboard
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function lineChart(days, series) {
    const w = 420, h = 170, pad = 28;
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", role: "img" });
    const x = (i) => pad + (days.length > 1 ? i * (w - pad * 2) / (days.length - 1) : (w - pad * 2) / 2);
    const y = (v) => h - pad - v * (h - pad * 2) / max;
    root.append(svg("line", { x1: pad, y1: h - pad, x2: w - pad, y2: h - pad, stroke: "#ccc" }));
    root.append(svg("text", { x: 2, y: pad }, String(max)));
    root.append(svg("text", { x: pad, y: h - 8 }, days[0].slice(5)));
    root.append(svg("text", { x: w - pad - 24, y: h - 8 }, days[days.length - 1].slice(5)));
    series.forEach((s, k) => {
      root.append(svg("polyline", { fill: "none", stroke: s.color, "stroke-width": 2,
        points: s.values.map((v, i) => x(i) + "," + y(v)).join(" ") }));
      s.values.forEach((v, i) => root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, fill: s.color },
        )));
      root.append(svg("text", { x: w - 150 + k * 0, y: 12 + k * 12, fill: s.color }, "— " + s.name));
    });
    return root;
  }
  function barChart(items) {
    const w = 420, row = 20, h = Math.max(40, items.length * row + 10);
    const max = Math.max(1, ...items.map((i) => i.value));
    const root = svg("svg", { viewBox: "0 0 " + w + " " + h, width: "100%", role: "img" });
    items.forEach((item, i) => {
      root.append(svg("text", { x: 0, y: i * row + 14 }, item.label.slice(0, 22)));
      root.append(svg("rect", { x: 150, y: i * row + 4, height: 12, width: Math.max(2, item.value * 230 / max), fill: "#1f7a5c", rx: 2 }));
      root.append(svg("text", { x: 155 + item.value * 230 / max, y: i * row + 14 }, String(item.value)));
    });
    if (!items.length) root.append(svg("text", { x: 0, y: 20 }, "—"));
    return root;
  }
  async function loadDashboard() {
    const period = $("period").value;
    $("dash-csv").href = "/api/admin/dashboard.csv?period=" + period;
    const r = await admin("GET", "/dashboard?period=" + period);
    const t = r.totals;
    const pct = (v) => v === null ? "—" : (v * 100).toFixed(1) + "%";
    const secs = (v) => v === null ? "—" : (v < 120 ? v.toFixed(0) + " s" : (v / 60).toFixed(1) + " min");
    const cards = [["会话 Conversations", t.conversations], ["自动解决率 Auto-resolution", pct(t.automatic_resolution_rate)],
      ["转人工率 Handoff rate", pct(t.handoff_rate)], ["平均等待 Avg wait", secs(t.average_wait_seconds)],
      ["平均处理 Avg handling", secs(t.average_handling_seconds)], ["满意度 CSAT (1-5)", t.csat === null ? "—" : t.csat + " (" + t.ratings + ")"],
      ["未解决 Unanswered", t.unanswered]];
    $("dash-cards").replaceChildren(...cards.map(([name, value]) => el("div", { class: "card" },
      el("div", { class: "value" }, value), el("div", { class: "name" }, name))));
    const days = r.days;
    $("chart-daily").replaceChildren(lineChart(days, [
      { name: "conversations", color: "#1f7a5c", values: r.daily.map((d) => d.conversations) },
      { name: "handoffs", color: "#b3261e", values: r.daily.map((d) => d.handoffs) }]));
    $("chart-unanswered").replaceChildren(lineChart(days, [
      { name: "unanswered", color: "#c77700", values: r.daily.map((d) => d.unanswered) }]));
    $("chart-reasons").replaceChildren(barChart(Object.entries(r.handoff_reasons).map(([label, value]) => ({ label, value }))));
    $("chart-entries").replaceChildren(barChart(r.top_entries.map((e) => ({ label: e.entry_id, value: e.count }))));
  }
  $("period").addEventListener("change", loadDashboard);

  // ------------------------------------------------------------------ start
  call("GET", "/api/agent/me").then(enter).catch(() => showLogin());
})();
