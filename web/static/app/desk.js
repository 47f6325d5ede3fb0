// @ts-check
// The agent desk at /desk: sign-in, then the queue and sessions on the
// left, the open session in the middle, the customer on the right (one
// pane at a time on phones).
import { useStore } from "./observable.js";
import { html, render, useState, useEffect, useReducer, useRef } from "./lib.js";
import { Session } from "./session.js";
import { AuthForm, ConnectionBadge, Avatar, MessageList, Composer, TypingLine } from "./ui.js";
import { shortTime, preview, waited, safeURL } from "./format.js";
import { DeskStore } from "./desk-store.js";

/** @typedef {import("../sdk/imclient.js").Token} Token */
/** @typedef {import("./desk-store.js").SessionRow} SessionRow */

const session = new Session("imserver.desk");

/** Re-renders every few seconds (waiting times). @param {number} ms */
function useTick(ms) {
  const [, bump] = useReducer((/** @type {number} */ n) => n + 1, 0);
  useEffect(() => {
    const t = setInterval(() => bump(0), ms);
    return () => clearInterval(t);
  }, [ms]);
}

function App() {
  const [token, setToken] = useState(/** @type {Token|null} */ (session.load()));
  const [store, setStore] = useState(/** @type {DeskStore|null} */ (null));
  const fresh = useRef(false);

  useEffect(() => {
    if (!token) return;
    let s = /** @type {DeskStore|null} */ (null);
    let stopped = false;
    (async () => {
      const t = await session.verify(token);
      if (stopped) return;
      if (!t) {
        session.clear();
        setToken(null);
        return;
      }
      session.save(t);
      s = new DeskStore(t, {
        onUnauthorized: () => {
          session.clear();
          setToken(null);
        },
      });
      setStore(s);
      s.start(fresh.current);
      fresh.current = false;
    })();
    return () => {
      stopped = true;
      if (s) s.stop();
      setStore(null);
    };
  }, [token]);

  useEffect(() => session.follow(token, setToken), [token]);

  if (!token) {
    return html`<${AuthForm}
      title="imserver desk"
      subtitle="Customer service for agents. Sign in with your account."
      onLogin=${async (/** @type {string} */ u, /** @type {string} */ p) => {
        const t = await session.login(u, p);
        fresh.current = true;
        setToken(t);
      }}
      onRegister=${async (/** @type {string} */ u, /** @type {string} */ p) => {
        // A new account serves no shop until an administrator adds it.
        const t = await session.register(u, p);
        fresh.current = true;
        setToken(t);
      }} />`;
  }
  if (!store) return html`<div class="splash" aria-busy="true"><span class="brand-mark"></span></div>`;
  const logout = async () => {
    const t = token;
    store.setAvailability("away").catch(() => {});
    setToken(null);
    await session.logout(t);
  };
  return html`<${Desk} store=${store} onLogout=${logout} />`;
}

/** @param {{store: DeskStore, onLogout: () => void}} props */
function Desk({ store, onLogout }) {
  useStore(store);
  const [panel, setPanel] = useState(false);
  useEffect(() => {
    const vis = () => store.setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", vis);
    const focus = () => store.setVisible(true);
    window.addEventListener("focus", focus);
    return () => {
      document.removeEventListener("visibilitychange", vis);
      window.removeEventListener("focus", focus);
    };
  }, [store]);

  const open = store.openSession();
  return html`
    <div class=${`desk ${open ? "has-open" : ""} ${panel ? "has-panel" : ""}`}>
      <${Side} store=${store} onLogout=${onLogout} />
      <section class="main desk-main">
        ${open
          ? html`<${SessionView} key=${open.session_id} store=${store} s=${open} onPanel=${() => setPanel(!panel)} />`
          : html`<${Empty} store=${store} />`}
      </section>
      ${open && html`<${CustomerPanel} key=${"c" + open.session_id} store=${store} s=${open} onClose=${() => setPanel(false)} />`}
    </div>
  `;
}

/** @param {{store: DeskStore, onLogout: () => void}} props */
function Side({ store, onLogout }) {
  useTick(15000);
  const queue = store.queueList();
  const sessions = store.sessionList();
  const away = store.availability === "away";
  return html`
    <aside class="sidebar desk-side">
      <header class="side-head">
        <${Avatar} name=${store.me.username} id=${store.uid} />
        <div class="me">
          <strong>${store.me.username}</strong>
          <${ConnectionBadge} state=${store.state} />
        </div>
        <button class=${`avail ${away ? "away" : "online"}`} data-testid="desk-availability" data-state=${store.availability}
          onClick=${() => store.toggleAvailability()} title=${away ? "Away: no new customers. Click to go online." : "Online: new customers come to you. Click to go away."}>
          <i aria-hidden="true"></i>${away ? "Away" : "Online"}
        </button>
        <button class="icon-btn" data-testid="logout" title="Sign out" aria-label="Sign out" onClick=${onLogout}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M10 17v-3H3v-4h7V7l5 5zm9-14H12v2h7v14h-7v2h7a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2"/></svg>
        </button>
      </header>
      ${store.shops.length > 1 &&
      html`<label class="shop-pick">
        <span class="muted small">Shop</span>
        <select data-testid="desk-shop" value=${store.shopId} onChange=${(/** @type {any} */ e) => store.setShop(Number(e.target.value))}>
          ${store.shops.map((s) => {
            const w = store.queueCount(s.shop_id);
            const u = s.shop_id === store.shopId ? 0 : store.unreadIn(s.shop_id);
            const extra = [w ? `${w} waiting` : "", u ? `${u} unread` : ""].filter(Boolean).join(", ");
            return html`<option value=${s.shop_id} key=${s.shop_id}>${s.name}${extra ? ` (${extra})` : ""}</option>`;
          })}
        </select>
      </label>`}
      ${store.shops.length === 1 && html`<div class="shop-one"><span class="muted small">Shop</span> <strong>${store.shops[0].name}</strong></div>`}
      <${AlertSettings} store=${store} />
      <div class="desk-lists">
        <h2 class="list-head">Waiting <span class="count">${queue.length}</span></h2>
        <ul class="queue-list" data-testid="queue-list">
          ${queue.map((item) => html`<${QueueItem} key=${item.session_id} store=${store} item=${item} />`)}
          ${queue.length === 0 && html`<li class="hint small">Nobody is waiting.</li>`}
        </ul>
        <h2 class="list-head">My sessions <span class="count">${sessions.length}</span></h2>
        <ul class="session-list conv-list" data-testid="session-list">
          ${sessions.map((s) => html`<${SessionItem} key=${s.session_id} store=${store} s=${s} />`)}
          ${sessions.length === 0 &&
          html`<li class="hint small">${store.loaded && !store.shops.length ? "" : away ? "You are away: new customers wait in the queue." : "New customers are assigned to you here."}</li>`}
        </ul>
      </div>
    </aside>
  `;
}

/** Notification permission and sound. @param {{store: DeskStore}} props */
function AlertSettings({ store }) {
  const [, bump] = useReducer((/** @type {number} */ n) => n + 1, 0);
  const a = store.alerts;
  return html`<div class="alert-settings">
    ${a.canAsk() && html`<button class="link small" onClick=${async () => { await a.ask(); bump(0); }}>Enable desktop notifications</button>`}
    <button class="link small muted" onClick=${() => { a.unlock(); a.setMuted(!a.muted); bump(0); }} aria-pressed=${!a.muted}>
      ${a.muted ? "Sound off" : "Sound on"}
    </button>
  </div>`;
}

/** @param {{store: DeskStore, item: import("./desk-store.js").QueueItem}} props */
function QueueItem({ store, item }) {
  const name = store.names.label(item.customer);
  const [busy, setBusy] = useState(false);
  const take = async () => {
    setBusy(true);
    await store.take(item.session_id);
    setBusy(false);
  };
  return html`
    <li class="queue-item" data-testid="queue-item" data-session=${item.session_id} data-customer=${item.customer}>
      <${Avatar} name=${name} id=${item.customer} size="small" />
      <span class="queue-main">
        <strong>${name}</strong>
        <small class="muted">waiting ${waited(item.created_at)}</small>
      </span>
      <button class="btn primary small" data-testid="queue-take" disabled=${busy} onClick=${take}>Take</button>
    </li>
  `;
}

/** @param {{store: DeskStore, s: SessionRow}} props */
function SessionItem({ store, s }) {
  const name = store.names.label(s.customer);
  const cv = store.convs.get(s.conv);
  const last = cv ? cv.last : null;
  const unread = store.unread(s);
  const typing = store.typingNames(s.conv).length > 0;
  let lastText = last ? preview(last) : "New session";
  if (last && last.from === store.uid) lastText = `You: ${lastText}`;
  const active = store.openId === s.session_id;
  return html`
    <li class=${`conv session-item ${active ? "active" : ""} ${unread ? "unread" : ""}`} data-testid="session-item"
      data-session=${s.session_id} data-customer=${s.customer} data-conv=${s.conv}>
      <a href="#" onClick=${(/** @type {Event} */ e) => { e.preventDefault(); store.setOpen(s.session_id); }}>
        <${Avatar} name=${name} id=${s.customer} />
        <span class="conv-main">
          <span class="conv-top">
            <span class="conv-title">${name}</span>
            <time class="conv-time">${shortTime(store.activity(s))}</time>
          </span>
          <span class="conv-bottom">
            ${typing ? html`<span class="conv-last typing-text">typing…</span>` : html`<span class="conv-last">${lastText}</span>`}
            ${unread > 0 && html`<span class="badge" data-testid="session-unread">${unread > 999 ? "999+" : unread}</span>`}
          </span>
        </span>
      </a>
    </li>
  `;
}

/** @param {{store: DeskStore}} props */
function Empty({ store }) {
  let text = "Pick a session on the left, or take a waiting customer.";
  if (store.loaded && !store.shops.length) text = "You are not an agent of any shop yet. An administrator adds agents on the admin page.";
  return html`
    <div class="welcome">
      <div class="welcome-art" aria-hidden="true"><span class="brand-mark big"></span></div>
      <h2>Hello, ${store.me.username}</h2>
      <p class="muted">${text}</p>
      ${store.notice && html`<p class="notice" role="status">${store.notice}</p>`}
    </div>
  `;
}

/** @param {{store: DeskStore, s: SessionRow, onPanel: () => void}} props */
function SessionView({ store, s, onPanel }) {
  const name = store.names.label(s.customer);
  const cv = store.convs.get(s.conv);
  const v = store.history.view(s.conv);
  const typing = store.typingNames(s.conv);
  const [transfer, setTransfer] = useState(false);
  const [card, setCard] = useState(false);
  const close = () => {
    if (confirm(`Close the session with ${name}? Their next message opens a new one.`)) store.close(s.session_id);
  };
  const tools = html`<button class="icon-btn" type="button" title="Send a card" aria-label="Send a card" onClick=${() => setCard(!card)}>
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v12a2 2 0 0 1-2 2H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2m0 2v12h16V6zm2 2h7v2H6zm0 4h12v1.5H6zm0 3h9v1.5H6z"/></svg>
  </button>`;
  return html`
    <header class="conv-head">
      <button class="icon-btn back" aria-label="Back to sessions" title="Back" onClick=${() => store.setOpen(0)}>
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z"/></svg>
      </button>
      <${Avatar} name=${name} id=${s.customer} />
      <div class="conv-head-text">
        <h1>${name}</h1>
        <span class="muted small">${store.shopName(s.shop_id)} · session #${s.session_id}</span>
      </div>
      <div class="head-actions">
        <button class="btn small" data-testid="transfer-open" onClick=${() => { setTransfer(!transfer); if (!transfer) store.loadAgents(s.shop_id); }}
          aria-expanded=${transfer}>Transfer</button>
        <button class="btn small danger-outline" data-testid="session-close" onClick=${close}>Close</button>
        <button class="icon-btn info-btn" title="Customer" aria-label="Customer details" onClick=${onPanel}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20m1 15h-2v-6h2zm0-8h-2V7h2z"/></svg>
        </button>
      </div>
      ${transfer && html`<${TransferMenu} store=${store} s=${s} onDone=${() => setTransfer(false)} />`}
    </header>
    <${MessageList}
      conv=${s.conv} msgs=${v.msgs} pending=${v.pending} me=${store.uid} peerRead=${cv ? cv.peerRead : 0}
      nameOf=${(/** @type {number} */ uid) => store.names.label(uid)} showNames=${true}
      hasMore=${v.hasMore} loading=${v.loading}
      onLoadOlder=${() => store.history.loadOlder(s.conv)}
      empty="No messages yet." />
    <${TypingLine} names=${typing} />
    ${store.notice && html`<div class="notice" role="status">${store.notice}<button class="link" onClick=${() => store.setNotice("")}>Dismiss</button></div>`}
    ${card && html`<${CardForm} onSend=${(/** @type {any} */ c) => { store.sendCard(s.conv, c); setCard(false); }} onCancel=${() => setCard(false)} />`}
    <${Composer} key=${s.conv} autofocus=${true} uploading=${store.uploading > 0}
      placeholder="Reply… (/ for canned replies)"
      canned=${store.canned.get(s.shop_id) || []} tools=${tools}
      onSend=${(/** @type {string} */ t) => store.sendText(s.conv, t)}
      onFile=${(/** @type {File} */ f) => store.sendFile(s.conv, f)}
      onTyping=${() => store.typingNow(s.conv)} />
  `;
}

/** The other agents of the shop; a click transfers. @param {{store: DeskStore, s: SessionRow, onDone: () => void}} props */
function TransferMenu({ store, s, onDone }) {
  const list = (store.agents.get(s.shop_id) || []).filter((a) => a.uid !== store.uid);
  return html`
    <div class="menu transfer-menu" role="menu">
      <div class="menu-head">Transfer to</div>
      ${list.map(
        (a) => html`<button class="menu-item" role="menuitem" key=${a.uid} data-testid="transfer-agent" data-uid=${a.uid}
          onClick=${async () => { if (await store.transfer(s.session_id, a.uid)) onDone(); }}>
          <${Avatar} name=${a.username} id=${a.uid} size="small" />
          <span class="menu-main"><strong>${a.username}</strong>
            <small class="muted">${!a.online ? "offline" : a.status === "away" ? "away" : "online"} · ${a.open_sessions} open</small></span>
          <i class=${`dot ${!a.online ? "off" : a.status === "away" ? "away" : "on"}`} aria-hidden="true"></i>
        </button>`,
      )}
      ${!store.agents.has(s.shop_id) && html`<div class="menu-note muted small">Loading…</div>`}
      ${store.agents.has(s.shop_id) && list.length === 0 && html`<div class="menu-note muted small">No other agent serves this shop.</div>`}
    </div>
  `;
}

/** @param {{onSend: (c: {title: string, description?: string, url?: string}) => void, onCancel: () => void}} props */
function CardForm({ onSend, onCancel }) {
  const [title, setTitle] = useState("");
  const [description, setDescription] = useState("");
  const [url, setUrl] = useState("");
  const urlOK = !url.trim() || !!safeURL(url.trim());
  const submit = (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!title.trim() || !urlOK) return;
    onSend({ title: title.trim(), description: description.trim() || undefined, url: url.trim() || undefined });
  };
  return html`
    <form class="card-form" onSubmit=${submit}>
      <input placeholder="Card title" value=${title} onInput=${(/** @type {any} */ e) => setTitle(e.target.value)} aria-label="Card title" maxlength="256" />
      <input placeholder="Description (optional)" value=${description} onInput=${(/** @type {any} */ e) => setDescription(e.target.value)} aria-label="Card description" />
      <input placeholder="https://… (optional)" value=${url} onInput=${(/** @type {any} */ e) => setUrl(e.target.value)} aria-label="Card link" />
      ${!urlOK && html`<p class="form-error">Links must start with http:// or https://.</p>`}
      <div class="row"><button class="btn primary small" type="submit" disabled=${!title.trim() || !urlOK}>Send card</button>
        <button class="btn small" type="button" onClick=${onCancel}>Cancel</button></div>
    </form>
  `;
}

/** @param {{store: DeskStore, s: SessionRow, onClose: () => void}} props */
function CustomerPanel({ store, s, onClose }) {
  const c = store.customers.get(`${s.shop_id}:${s.customer}`);
  const name = store.names.label(s.customer);
  const username = store.names.username(s.customer);
  const page = c && c.page;
  const pageURL = page ? safeURL(page.url) : null;
  return html`
    <aside class="panel customer-panel" data-testid="customer-panel" aria-label="Customer">
      <header class="panel-head">
        <h2>Customer</h2>
        <button class="icon-btn panel-close" onClick=${onClose} aria-label="Close" title="Close">✕</button>
      </header>
      <div class="panel-body">
        <section class="panel-section customer-card">
          <${Avatar} name=${name} id=${s.customer} />
          <div>
            <strong data-testid="customer-name">${name}</strong>
            ${username && username !== name && html`<div class="muted small">${username}</div>`}
            ${c && c.first_contact ? html`<div class="muted small">First contact ${new Date(c.first_contact).toLocaleDateString()}</div>` : null}
          </div>
        </section>
        <section class="panel-section">
          <h3>Writing from</h3>
          ${page
            ? html`<div class="page-ctx">
                ${pageURL ? html`<a href=${pageURL} target="_blank" rel="noopener noreferrer">${page.title || pageURL}</a>` : html`<span>${page.title || page.url}</span>`}
                ${page.title && pageURL && html`<small class="muted url">${pageURL}</small>`}
              </div>`
            : html`<span class="muted small">${c ? "Unknown page" : "…"}</span>`}
        </section>
        <section class="panel-section">
          <h3>Sessions</h3>
          <ul class="past-sessions" data-testid="customer-sessions">
            ${(c ? c.sessions : []).map(
              (x) => html`<li key=${x.session_id} class=${x.session_id === s.session_id ? "current" : ""}>
                <span>#${x.session_id}</span>
                <span class=${`tag st-${x.status}`}>${x.status}</span>
                <span class="muted small">${new Date(x.created_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" })}</span>
                ${x.agent ? html`<span class="muted small">${store.names.label(x.agent)}</span>` : null}
              </li>`,
            )}
          </ul>
        </section>
      </div>
    </aside>
  `;
}

render(html`<${App} />`, /** @type {HTMLElement} */ (document.getElementById("root")));
