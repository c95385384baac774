(() => {
  const log = document.getElementById("log");
  const form = document.getElementById("form");
  const input = document.getElementById("text");
  const send = document.getElementById("send");
  let session = localStorage.getItem("kefu-session");
  if (!session) {
    session = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)).replace(/[^A-Za-z0-9_-]/g, "");
    localStorage.setItem("kefu-session", session);
  }
  let lastSeen = Date.now() / 1000;
  let polling = null;

  function add(role, text, suggestions) {
    const div = document.createElement("div");
    div.className = "msg " + role;
    div.dataset.role = role;
    if (role !== "customer") {
      const who = document.createElement("div");
      who.className = "who";
      who.textContent = role === "agent" ? "人工客服 Agent" : "智能客服 Kefu";
      div.appendChild(who);
    }
    const body = document.createElement("div");
    body.className = "text";
    body.textContent = text;
    div.appendChild(body);
    if (suggestions && suggestions.length) {
      const box = document.createElement("div");
      box.className = "suggestions";
      suggestions.forEach((s) => {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = s.label;
        b.addEventListener("click", () => { box.remove(); say(s.payload, s.label); });
        box.appendChild(b);
      });
      div.appendChild(box);
    }
    log.appendChild(div);
    log.scrollTop = log.scrollHeight;
  }

  function status(text) {
    const div = document.createElement("div");
    div.className = "status";
    div.textContent = text;
    log.appendChild(div);
  }

  async function poll() {
    try {
      const r = await fetch(`/api/chat/${session}/messages?after=${lastSeen}`);
      if (!r.ok) return;
      const data = await r.json();
      data.messages.forEach((m) => { add(m.role === "agent" ? "agent" : "bot", m.text, m.suggestions); lastSeen = Math.max(lastSeen, m.at); });
      if (data.state === "bot" && polling) { clearInterval(polling); polling = null; }
    } catch (e) { /* offline for a moment; try again next tick */ }
  }

  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

  // One id per message: when the server is briefly unavailable (503) or the connection drops,
  // the page sends the same message again until it gets through; the server's dedupe makes sure
  // it counts once.
  async function say(payload, shown) {
    add("customer", shown || payload);
    send.disabled = true;
    const messageId = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
    let told = false;
    try {
      for (let failures = 0; ; ) {
        let r, data;
        try {
          r = await fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ session, text: payload, message_id: messageId }) });
          data = await r.json();
        } catch (e) {
          if (++failures > 10) { status("网络异常，请稍后重试 / Network problem, please retry"); break; }
          if (failures === 1) status("网络不稳定，正在重试… / Reconnecting…");
          await sleep(3000);
          continue;
        }
        if (r.status === 503 && data.retry) {
          if (!told) (data.replies || []).forEach((m) => add("bot", m.text, m.suggestions));
          told = true;
          await sleep(1000 * (Number(r.headers.get("Retry-After")) || 3));
          continue;
        }
        (data.replies || []).forEach((m) => add("bot", m.text, m.suggestions));
        if (!r.ok && !(data.replies || []).length) status(data.error || "出错了，请稍后再试 / Something went wrong");
        lastSeen = Date.now() / 1000;
        if ((data.state === "waiting" || data.state === "agent") && !polling) polling = setInterval(poll, 3000);
        break;
      }
    } finally {
      send.disabled = false;
      input.focus();
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    say(text);
  });
  add("bot", "您好！我是智能客服，有什么可以帮您？\nHello! How can I help you today?");
  input.focus();
})();
