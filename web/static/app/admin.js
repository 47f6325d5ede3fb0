// @ts-check
// Administration at /admin: shops (settings, agents, canned replies, the
// widget snippet, a live overview of queues and sessions), broadcasts and
// users. REST for everything; an MQTT client for the connection state and
// new broadcasts as they are sent.
import { html, render, useState, useEffect, useRef } from "./lib.js";
import { textOf } from "../sdk/imclient.js";
import { Session, describeError } from "./session.js";
import { AuthForm, ConnectionBadge, Avatar } from "./ui.js";
import { AdminStore } from "./admin-store.js";
import { useStore } from "./observable.js";
import { ShopsTab } from "./admin-shops.js";

/** @typedef {import("../sdk/imclient.js").Token} Token */

const session = new Session("imserver.admin");

function App() {
  const [token, setToken] = useState(/** @type {Token|null} */ (session.load()));
  const [store, setStore] = useState(/** @type {AdminStore|null} */ (null));

  useEffect(() => {
    if (!token) return;
    let s = /** @type {AdminStore|null} */ (null);
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
      if (t.role !== "admin") {
        setToken(t);
        return;
      }
      s = new AdminStore(t, () => {
        session.clear();
        setToken(null);
      });
      setStore(s);
      s.start();
    })();
    return () => {
      stopped = true;
      if (s) s.stop();
      setStore(null);
    };
  }, [token && token.access_token]);

  if (!token) {
    return html`<${AuthForm}
      title="imserver admin"
      subtitle="Shops, agents, broadcasts and users. Administrators only."
      onLogin=${async (/** @type {string} */ u, /** @type {string} */ p) => setToken(await session.login(u, p))} />`;
  }
  const logout = async () => {
    const t = token;
    setToken(null);
    await session.logout(t);
  };
  if (token.role !== "admin") {
    return html`<main class="auth"><div class="auth-card">
      <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span>imserver admin</span></div>
      <p>You are signed in as <strong>${token.username}</strong>, who is not an administrator.</p>
      <p class="muted small">Agents work at <a href="/desk">/desk</a>; everyone chats at <a href="/">/</a>.</p>
      <button class="btn" data-testid="logout" onClick=${logout}>Sign out</button>
    </div></main>`;
  }
  if (!store) return html`<div class="splash" aria-busy="true"><span class="brand-mark"></span></div>`;
  return html`<${Admin} store=${store} onLogout=${logout} />`;
}

const tabs = [
  ["shops", "Shops"],
  ["broadcasts", "Broadcasts"],
  ["users", "Users"],
];

/** @param {{store: AdminStore, onLogout: () => void}} props */
function Admin({ store, onLogout }) {
  useStore(store);
  const [tab, setTab] = useState(() => {
    const h = location.hash.slice(1);
    return tabs.some(([t]) => t === h) ? h : "shops";
  });
  const pick = (/** @type {string} */ t) => {
    setTab(t);
    history.replaceState(null, "", `#${t}`);
  };
  return html`
    <div class="admin">
      <header class="admin-head">
        <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span>Admin</span></div>
        <nav class="tabs" role="tablist">
          ${tabs.map(
            ([t, label]) => html`<button role="tab" key=${t} class=${`tab ${tab === t ? "active" : ""}`} aria-selected=${tab === t}
              data-testid=${"tab-" + t} onClick=${() => pick(t)}>${label}</button>`,
          )}
        </nav>
        <div class="admin-me">
          <${ConnectionBadge} state=${store.state} />
          <span class="muted small">${store.me.username}</span>
          <button class="icon-btn" data-testid="logout" title="Sign out" aria-label="Sign out" onClick=${onLogout}>
            <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M10 17v-3H3v-4h7V7l5 5zm9-14H12v2h7v14h-7v2h7a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2"/></svg>
          </button>
        </div>
      </header>
      <main class="admin-main">
        ${tab === "shops" && html`<${ShopsTab} store=${store} />`}
        ${tab === "broadcasts" && html`<${BroadcastsTab} store=${store} />`}
        ${tab === "users" && html`<${UsersTab} store=${store} />`}
      </main>
    </div>
  `;
}

/** @param {{store: AdminStore}} props */
function BroadcastsTab({ store }) {
  const [textValue, setText] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!store.broadcastsLoaded) store.loadBroadcasts(false).catch((e) => setError(describeError(e)));
  }, [store]);
  const send = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const t = textValue.trim();
    if (!t) return;
    setBusy(true);
    setError("");
    try {
      const env = await store.api.broadcast(t);
      store.broadcasts.set(env.seq, env);
      store.changed();
      setText("");
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  const list = [...store.broadcasts.values()].sort((a, b) => b.seq - a.seq);
  return html`
    <section class="card">
      <h2>New broadcast</h2>
      <p class="muted small">Everyone sees it on the chat page, as a banner and in Announcements.</p>
      <form class="stack" onSubmit=${send}>
        <textarea data-testid="broadcast-text" rows="3" maxlength="4000" placeholder="Write an announcement…"
          value=${textValue} onInput=${(/** @type {any} */ e) => setText(e.target.value)}></textarea>
        ${error && html`<p class="form-error" role="alert">${error}</p>`}
        <div><button class="btn primary" type="submit" data-testid="broadcast-send" disabled=${busy || !textValue.trim()}>Send to everyone</button></div>
      </form>
    </section>
    <section class="card">
      <h2>Past broadcasts</h2>
      <ul class="broadcasts" data-testid="broadcast-list">
        ${list.map(
          (env) => html`<li key=${env.seq} data-testid="broadcast-item" data-seq=${env.seq}>
            <p>${textOf(env) || "(not text)"}</p>
            <small class="muted">${new Date(env.ts).toLocaleString()} · ${store.names.label(env.from)}</small>
          </li>`,
        )}
        ${store.broadcastsLoaded && list.length === 0 && html`<li class="muted">No broadcast yet.</li>`}
      </ul>
      ${store.moreBroadcasts && html`<button class="btn small" onClick=${() => store.loadBroadcasts(true).catch(() => {})}>Older</button>`}
    </section>
  `;
}

/** @param {{store: AdminStore}} props */
function UsersTab({ store }) {
  const [q, setQ] = useState("");
  const [list, setList] = useState(/** @type {import("../sdk/imclient.js").UserInfo[]|null} */ (null));
  const [error, setError] = useState("");
  const seq = useRef(0);
  const search = async (/** @type {string} */ query) => {
    const n = ++seq.current;
    try {
      const r = await store.api.searchUsers(query.trim(), 50);
      if (n !== seq.current) return;
      setList(r);
      setError("");
    } catch (e) {
      if (n === seq.current) setError(describeError(e));
    }
  };
  useEffect(() => {
    const t = setTimeout(() => search(q), q ? 250 : 0);
    return () => clearTimeout(t);
  }, [q]);
  const toggle = async (/** @type {any} */ u) => {
    setError("");
    try {
      if (u.disabled) await store.api.enableUser(u.uid);
      else await store.api.disableUser(u.uid);
      setList((list || []).map((x) => (x.uid === u.uid ? { ...x, disabled: !u.disabled } : x)));
    } catch (e) {
      setError(describeError(e));
    }
  };
  return html`
    <section class="card">
      <h2>Users</h2>
      <input data-testid="user-search" type="search" placeholder="Search by username" value=${q} autocapitalize="none" spellcheck="false"
        onInput=${(/** @type {any} */ e) => setQ(e.target.value)} aria-label="Search users" />
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <ul class="rows users">
        ${(list || []).map(
          (u) => html`<li key=${u.uid} class=${u.disabled ? "disabled" : ""} data-testid="user-item" data-uid=${u.uid} data-disabled=${u.disabled ? "true" : "false"}>
            <${Avatar} name=${u.name || u.username} id=${u.uid} size="small" />
            <span class="row-main">
              <strong>${u.username}</strong>${u.name && html` <span class="muted">(${u.name})</span>`}
              <small class="muted">#${u.uid} · ${u.role}${u.created_at ? ` · joined ${new Date(u.created_at).toLocaleDateString()}` : ""}${u.disabled ? " · disabled" : ""}</small>
            </span>
            ${u.uid !== store.me.uid &&
            html`<button class=${`btn small ${u.disabled ? "" : "danger-outline"}`} data-testid="user-disable" onClick=${() => toggle(u)}>
              ${u.disabled ? "Enable" : "Disable"}
            </button>`}
          </li>`,
        )}
        ${list && list.length === 0 && html`<li class="muted">Nobody matches.</li>`}
      </ul>
    </section>
  `;
}

render(html`<${App} />`, /** @type {HTMLElement} */ (document.getElementById("root")));
