// Kefu chat widget: <script src="https://kefu.example.com/widget.js" async></script>
//
// Puts a chat bubble on the page; a click opens Kefu's own chat page in a frame (same protocol
// and same visitor as at /).  The frame is served by Kefu, so the visitor token stays in
// Kefu's origin, and Kefu lets only the sites in channels.web.allowed_origins frame it.
// Styles are set through the DOM (no stylesheet or inline markup the site's CSP must allow).
(() => {
  "use strict";
  const me = document.currentScript;
  if (!me || window.__kefuWidget) return;
  window.__kefuWidget = true;
  const base = new URL(me.src).origin;
  const label = me.dataset.label || "在线客服 Chat";
  const color = me.dataset.color || "#1f7a5c";

  function styled(tag, css) {
    const el = document.createElement(tag);
    Object.assign(el.style, css);
    return el;
  }

  const bubble = styled("button", {
    position: "fixed", right: "20px", bottom: "20px", zIndex: "2147483000", border: "0", borderRadius: "28px",
    padding: "14px 20px", background: color, color: "#fff", font: "15px/1 sans-serif", cursor: "pointer",
    boxShadow: "0 4px 14px rgba(0,0,0,.25)",
  });
  bubble.type = "button";
  bubble.id = "kefu-widget-bubble";
  bubble.textContent = label;
  bubble.setAttribute("aria-expanded", "false");

  const panel = styled("div", {
    position: "fixed", right: "20px", bottom: "84px", width: "380px", height: "600px",
    maxHeight: "calc(100vh - 104px)", maxWidth: "calc(100vw - 40px)", zIndex: "2147483000",
    borderRadius: "12px", overflow: "hidden", boxShadow: "0 8px 30px rgba(0,0,0,.3)", display: "none",
    background: "#fff",
  });
  panel.id = "kefu-widget-panel";
  let frame = null;

  function layout() {  // a phone: the chat takes the whole screen
    const small = window.innerWidth < 600;
    Object.assign(panel.style, small
      ? { right: "0", bottom: "0", width: "100vw", height: "100%", maxHeight: "100%", maxWidth: "100vw", borderRadius: "0" }
      : { right: "20px", bottom: "84px", width: "380px", height: "600px", maxHeight: "calc(100vh - 104px)",
          maxWidth: "calc(100vw - 40px)", borderRadius: "12px" });
    bubble.style.display = small && panel.style.display !== "none" ? "none" : "";
  }

  const close = styled("button", {
    position: "absolute", top: "8px", right: "8px", border: "0", background: "transparent", color: "#fff",
    font: "20px/1 sans-serif", cursor: "pointer", zIndex: "1",
  });
  close.type = "button";
  close.textContent = "×";
  close.setAttribute("aria-label", "关闭 Close");

  function toggle(open) {
    if (open && !frame) {
      frame = styled("iframe", { width: "100%", height: "100%", border: "0" });
      frame.title = "Kefu 客服";
      // who the visitor is, signed by the site (optional); in the fragment, so never in a server log
      frame.src = base + "/?embed=1" + (me.dataset.customer ? "#customer=" + encodeURIComponent(me.dataset.customer) : "");
      frame.allow = "clipboard-write";
      panel.appendChild(frame);
    }
    panel.style.display = open ? "block" : "none";
    bubble.setAttribute("aria-expanded", String(open));
    layout();
  }

  bubble.addEventListener("click", () => toggle(panel.style.display === "none"));
  close.addEventListener("click", () => toggle(false));
  window.addEventListener("resize", layout);
  panel.appendChild(close);
  document.body.appendChild(panel);
  document.body.appendChild(bubble);
  layout();
  if (me.dataset.open === "true") toggle(true);
})();
