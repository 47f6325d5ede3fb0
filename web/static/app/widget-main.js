// @ts-check
// The customer chat at /widget?shop={id}, the page inside the widget's
// iframe (it also works on its own). The host page passes the verified
// visitor and the page's address in the URL fragment, and talks to it with
// postMessage (open, closed, context); nothing from it is trusted beyond
// that: the server checks the visitor's hash.
import { useStore } from "./observable.js";
import { html, render, useState, useEffect } from "./lib.js";
import { ConnectionBadge, Avatar, MessageList, Composer, TypingLine } from "./ui.js";
import { eta } from "./format.js";
import { WidgetStore } from "./widget-store.js";

const params = new URLSearchParams(location.search);
const shop = Number(params.get("shop"));
const frag = new URLSearchParams(location.hash.slice(1));
const embedded = window.parent !== window;

/** @type {import("./widget-store.js").Embed} */
const embed = {
  uid: frag.get("uid") || undefined,
  hash: frag.get("hash") || undefined,
  name: (frag.get("name") || "").slice(0, 64) || undefined,
  url: frag.get("url") || undefined,
  title: frag.get("title") || undefined,
};
// The fragment is read once; drop it from the address (the hash stays out of history).
if (location.hash) history.replaceState(null, "", location.pathname + location.search);

/** @param {{store: WidgetStore}} props */
function Widget({ store }) {
  useStore(store);
  useEffect(() => {
    const onMessage = (/** @type {MessageEvent} */ e) => {
      if (e.source !== window.parent || !e.data || typeof e.data !== "object") return;
      const d = e.data;
      if (d.imserver === "open") store.setOpen(true);
      if (d.imserver === "closed") store.setOpen(false);
      if (d.imserver === "context" && typeof d.url === "string") store.setContext(d.url.slice(0, 2000), String(d.title || "").slice(0, 300));
    };
    window.addEventListener("message", onMessage);
    if (embedded) window.parent.postMessage({ imserver: "ready" }, "*");
    const vis = () => store.setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", vis);
    return () => {
      window.removeEventListener("message", onMessage);
      document.removeEventListener("visibilitychange", vis);
    };
  }, [store]);

  const v = store.view();
  const agent = store.agentName();
  const typing = store.typingName();
  const q = store.queue;
  const started = !!store.client;
  return html`
    <div class="widget">
      <header class="w-head">
        ${agent ? html`<${Avatar} name=${agent} id=${store.agent} />` : html`<span class="w-logo" aria-hidden="true"></span>`}
        <div class="w-title">
          ${agent
            ? html`<strong data-testid="agent-name">${agent}</strong><span class="w-sub">is helping you</span>`
            : html`<strong>Chat with us</strong><span class="w-sub">${q ? "Waiting for an agent" : "We usually answer within minutes"}</span>`}
        </div>
        ${started && html`<${ConnectionBadge} state=${store.state} />`}
        ${embedded &&
        html`<button class="icon-btn w-close" aria-label="Close the chat" title="Close" onClick=${() => window.parent.postMessage({ imserver: "close" }, "*")}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M18.3 5.7 12 12l6.3 6.3-1.4 1.4-6.3-6.3-6.3 6.3-1.4-1.4L9.2 12 2.9 5.7l1.4-1.4 6.3 6.3 6.3-6.3z"/></svg>
        </button>`}
      </header>
      ${q &&
      html`<div class="queue-status" data-testid="queue-status" data-position=${q.position} role="status">
        <span class="q-pos">${q.position}</span>
        <span>${q.position === 1 ? "You are next in line." : `You are number ${q.position} in line.`}
          ${eta(q.eta_s) ? html` Estimated wait: ${eta(q.eta_s)}.` : " An agent will be with you as soon as possible."}</span>
      </div>`}
      ${store.closed && html`<div class="w-note" role="status">This conversation was closed. Write again any time.</div>`}
      <${MessageList}
        conv=${store.conv} msgs=${v.msgs} pending=${v.pending} me=${store.uid} peerRead=${store.peerRead}
        nameOf=${(/** @type {number} */ uid) => store.names.label(uid, "Agent")} showNames=${true}
        hasMore=${v.hasMore} loading=${v.loading}
        onLoadOlder=${() => store.history.loadOlder(store.conv)}
        empty=${html`<${Intro} store=${store} />`} />
      <${TypingLine} names=${typing ? [typing] : []} />
      ${store.notice && html`<div class="notice" role="status">${store.notice}</div>`}
      <${Composer} autofocus=${store.open} uploading=${store.uploading > 0} placeholder="Write a message…"
        onSend=${(/** @type {string} */ s) => store.sendText(s)}
        onFile=${(/** @type {File} */ f) => store.sendFile(f)}
        onTyping=${() => store.typingNow()} />
    </div>
  `;
}

/** What a new visitor sees before writing. @param {{store: WidgetStore}} props */
function Intro({ store }) {
  const [name, setName] = useState(store.guestName);
  return html`
    <div class="w-intro">
      <span class="brand-mark big" aria-hidden="true"></span>
      <strong>Hi there!</strong>
      <p>Ask us anything: write your message below and we will answer here.</p>
      ${!store.client && !store.embed.uid &&
      html`<label class="w-name">
        <span>Your name (optional)</span>
        <input value=${name} maxlength="64" autocomplete="name"
          onInput=${(/** @type {any} */ e) => { setName(e.target.value); store.guestName = e.target.value; }} />
      </label>`}
    </div>
  `;
}

function Invalid() {
  return html`<div class="widget"><div class="w-intro"><strong>This chat is not set up.</strong>
    <p>The page must give a shop: /widget?shop=1.</p></div></div>`;
}

const root = /** @type {HTMLElement} */ (document.getElementById("root"));
if (!(shop > 0 && Number.isSafeInteger(shop))) {
  render(html`<${Invalid} />`, root);
} else {
  const store = new WidgetStore(shop, embed, embedded);
  if (embedded) document.documentElement.classList.add("embedded");
  render(html`<${Widget} store=${store} />`, root);
  store.start();
}
