/* imserver chat widget embed script: <script src="https://HOST/widget.js" data-shop="1" async></script>
 * It adds a launcher button and an iframe of HOST/widget?shop=1 to the page,
 * nothing else: the chat, its styles and the visitor's token live in the
 * iframe, on HOST's origin. Optional: data-user-id, data-user-hash,
 * data-user-name (a visitor verified by the shop, see /auth/visitor). */
(function () {
  "use strict";
  var s = document.currentScript;
  if (!s || !s.src) {
    // Some loaders run the script without currentScript: find the tag.
    var tags = document.querySelectorAll("script[data-shop][src*='/widget.js']");
    s = tags[tags.length - 1];
  }
  if (!s || !s.src) return;
  var origin = new URL(s.src, location.href).origin;
  var shop = s.getAttribute("data-shop") || "";
  if (!/^[1-9][0-9]{0,17}$/.test(shop)) return;
  var key = "__imserverWidget" + shop;
  if (window[key]) return; // the script is on the page twice
  window[key] = true;

  var hash = new URLSearchParams();
  var attrs = { "data-user-id": "uid", "data-user-hash": "hash", "data-user-name": "name" };
  for (var a in attrs) {
    var v = s.getAttribute(a);
    if (v) hash.set(attrs[a], v);
  }
  hash.set("url", location.href.slice(0, 2000));
  hash.set("title", (document.title || "").slice(0, 300));

  var open = false;
  var z = "2147483000";
  function css(el, props) {
    el.style.setProperty("all", "initial", "important");
    for (var p in props) el.style.setProperty(p, props[p], "important");
  }

  var frame = document.createElement("iframe");
  frame.src = origin + "/widget?shop=" + shop + "#" + hash.toString();
  frame.title = "Chat";
  frame.setAttribute("data-testid", "widget-frame");
  frame.referrerPolicy = "no-referrer";
  function place() {
    var phone = window.innerWidth < 480;
    css(frame, {
      position: "fixed",
      "z-index": z,
      border: "0",
      display: open ? "block" : "none",
      background: "transparent",
      right: phone ? "0" : "20px",
      bottom: phone ? "0" : "92px",
      width: phone ? "100%" : "380px",
      height: phone ? "100%" : "min(640px, calc(100% - 112px))",
      "border-radius": phone ? "0" : "16px",
      "box-shadow": "0 18px 50px -12px rgba(16,24,40,.45)",
      "color-scheme": "normal",
    });
  }

  var btn = document.createElement("button");
  btn.type = "button";
  btn.setAttribute("data-testid", "widget-launcher");
  btn.setAttribute("aria-label", "Chat with us");
  btn.setAttribute("aria-expanded", "false");
  var svg = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svg, "svg");
  icon.setAttribute("viewBox", "0 0 24 24");
  icon.setAttribute("width", "28");
  icon.setAttribute("height", "28");
  icon.setAttribute("aria-hidden", "true");
  var path = document.createElementNS(svg, "path");
  path.setAttribute("fill", "#fff");
  icon.appendChild(path);
  var badge = document.createElement("span");
  btn.appendChild(icon);
  btn.appendChild(badge);
  var chat = "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2m3 6v2h2V9zm4 0v2h2V9zm4 0v2h2V9z";
  var cross = "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7l-1.4-1.4L9.2 12 2.9 5.7l1.4-1.4 6.3 6.3 6.3-6.3z";
  function draw(unread) {
    var phone = window.innerWidth < 480;
    css(btn, {
      position: "fixed",
      "z-index": z,
      right: "20px",
      bottom: "20px",
      width: "60px",
      height: "60px",
      "border-radius": "50%",
      background: "linear-gradient(135deg,#4f46e5,#7c3aed)",
      "box-shadow": "0 10px 30px -8px rgba(79,70,229,.7)",
      cursor: "pointer",
      display: open && phone ? "none" : "grid",
      "place-items": "center",
      border: "0",
      padding: "0",
    });
    path.setAttribute("d", open ? cross : chat);
    css(badge, {
      position: "absolute",
      top: "-2px",
      right: "-2px",
      "min-width": "20px",
      height: "20px",
      padding: "0 5px",
      "box-sizing": "border-box",
      "border-radius": "10px",
      background: "#dc2626",
      color: "#fff",
      font: "700 12px/20px system-ui,sans-serif",
      "text-align": "center",
      display: unread > 0 && !open ? "block" : "none",
    });
    badge.textContent = unread > 99 ? "99+" : String(unread || "");
  }
  var unread = 0;
  function post(msg) {
    if (frame.contentWindow) frame.contentWindow.postMessage(msg, origin);
  }
  function toggle(to) {
    open = to;
    btn.setAttribute("aria-expanded", String(open));
    place();
    draw(unread);
    post({ imserver: open ? "open" : "closed" });
  }
  btn.addEventListener("click", function () {
    toggle(!open);
  });
  window.addEventListener("message", function (e) {
    if (e.origin !== origin || e.source !== frame.contentWindow || !e.data) return;
    if (e.data.imserver === "close") toggle(false);
    if (e.data.imserver === "unread" && typeof e.data.count === "number") {
      unread = e.data.count;
      draw(unread);
    }
    if (e.data.imserver === "ready" && open) post({ imserver: "open" });
  });
  function context() {
    post({ imserver: "context", url: location.href.slice(0, 2000), title: (document.title || "").slice(0, 300) });
  }
  window.addEventListener("popstate", context);
  window.addEventListener("hashchange", context);
  window.addEventListener("resize", function () {
    place();
    draw(unread);
  });
  place();
  draw(0);
  function mount() {
    document.body.appendChild(frame);
    document.body.appendChild(btn);
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();
