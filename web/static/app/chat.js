// @ts-check
// The chat app at /: conversation list, open conversation, rooms panel.
import { useStore } from "./observable.js";
import { html, useState, useEffect } from "./lib.js";
import { ConnectionBadge, Avatar, MessageList, Composer, TypingLine, icons } from "./ui.js";
import { shortTime, preview, ago } from "./format.js";
import { describeError } from "./session.js";

/** @typedef {import("./store.js").ChatStore} ChatStore */

const narrowQuery = "(max-width: 899px)";

/** Whether the layout shows one pane at a time (phones). */
function useNarrow() {
  const [narrow, setNarrow] = useState(() => matchMedia(narrowQuery).matches);
  useEffect(() => {
    const m = matchMedia(narrowQuery);
    const on = () => setNarrow(m.matches);
    m.addEventListener("change", on);
    return () => m.removeEventListener("change", on);
  }, []);
  return narrow;
}

/** The open conversation, from the URL hash (#/c/{conv}). */
function hashConv() {
  const m = /^#\/c\/(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

/** @param {string|null} conv */
export function openConv(conv) {
  const h = conv ? `#/c/${encodeURIComponent(conv)}` : "#/";
  if (location.hash !== h) location.hash = h;
}

/** @param {{store: ChatStore, onLogout: () => void}} props */
export function ChatApp({ store, onLogout }) {
  useStore(store);
  const [panel, setPanel] = useState(false);

  useEffect(() => {
    const sync = () => store.setOpen(hashConv());
    sync();
    window.addEventListener("hashchange", sync);
    const vis = () => store.setVisible(document.visibilityState === "visible");
    document.addEventListener("visibilitychange", vis);
    // Rooms the user was added to come as room_member events on the
    // inbox; a reload on focus covers a connection that missed one.
    const focus = () => {
      store.setVisible(true);
      store.refreshRooms();
    };
    window.addEventListener("focus", focus);
    return () => {
      window.removeEventListener("hashchange", sync);
      document.removeEventListener("visibilitychange", vis);
      window.removeEventListener("focus", focus);
    };
  }, [store]);

  const open = store.open;
  const narrow = useNarrow();
  // One rooms-open button is in the page at a time: the list's, or on a
  // phone with a conversation open (the list hidden), the header's.
  const headerRooms = narrow && !!open;
  return html`
    <div class=${`app ${open ? "has-open" : ""} ${panel ? "has-panel" : ""}`}>
      <${Sidebar} store=${store} onLogout=${onLogout} onRooms=${() => setPanel(!panel)} roomsButton=${!headerRooms} />
      <section class="main">
        ${open
          ? html`<${Conversation} key=${open} store=${store} conv=${open} onInfo=${() => setPanel(true)} roomsButton=${headerRooms} />`
          : html`<${Welcome} store=${store} />`}
      </section>
      ${panel && html`<${RoomsPanel} store=${store} onClose=${() => setPanel(false)} />`}
    </div>
  `;
}

/** @param {{store: ChatStore, onLogout: () => void, onRooms: () => void, roomsButton: boolean}} props */
function Sidebar({ store, onLogout, onRooms, roomsButton }) {
  const list = store.list();
  const b = store.latestBroadcast();
  return html`
    <aside class="sidebar">
      <header class="side-head">
        <${Avatar} name=${store.me.username} id=${store.uid} />
        <div class="me">
          <strong>${store.me.username}</strong>
          <${ConnectionBadge} state=${store.state} />
        </div>
        <button class="icon-btn" data-testid=${roomsButton ? "rooms-open" : undefined} title="Rooms" aria-label="Rooms" onClick=${onRooms}>${roomsIcon}</button>
        <button class="icon-btn" data-testid="logout" title="Sign out" aria-label="Sign out" onClick=${onLogout}>
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M10 17v-3H3v-4h7V7l5 5zm9-14H12v2h7v14h-7v2h7a2 2 0 0 0 2-2V5a2 2 0 0 0-2-2"/></svg>
        </button>
      </header>
      ${b && html`<${Banner} env=${b} />`}
      <${NewChat} store=${store} />
      <ul class="conv-list" data-testid="conv-list">
        ${list.map((row) => html`<${ConvItem} key=${row.conv} store=${store} row=${row} active=${row.conv === store.open} />`)}
        ${list.length === 0 && html`<li class="hint">No conversations yet. Start a chat above, or open <b>Rooms</b> to create or join one.</li>`}
      </ul>
    </aside>
  `;
}

const roomsIcon = html`<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M16 11a3 3 0 1 0-3-3 3 3 0 0 0 3 3m-8 0a3 3 0 1 0-3-3 3 3 0 0 0 3 3m0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13m8 0h-1a4.2 4.2 0 0 1 2 3.5V19h6v-2.5c0-2.3-4.7-3.5-7-3.5"/></svg>`;

/** The newest broadcast, on top of the list. @param {{env: any}} props */
function Banner({ env }) {
  return html`
    <a class="banner" data-testid="broadcast" href="#/c/sys" data-seq=${env.seq}>
      <span class="banner-icon">${icons.megaphone}</span>
      <span class="banner-text">${preview(env)}</span>
    </a>
  `;
}

/** @param {{store: ChatStore}} props */
function NewChat({ store }) {
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const start = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setError("");
    try {
      const conv = await store.startChat(name);
      setName("");
      openConv(conv);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return html`
    <form class="new-chat" onSubmit=${start}>
      <input data-testid="new-chat-username" placeholder="Start a chat: username" autocapitalize="none" spellcheck="false"
        value=${name} onInput=${(/** @type {any} */ e) => setName(e.target.value)} aria-label="Username to chat with" />
      <button class="btn primary small" type="submit" data-testid="new-chat-start" disabled=${busy || !name.trim()}>Chat</button>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
    </form>
  `;
}

/** @param {{store: ChatStore, row: import("./store.js").ConvRow, active: boolean}} props */
function ConvItem({ store, row, active }) {
  const title = store.title(row);
  const typing = store.typingNames(row.conv);
  const last = row.last;
  let lastText = last ? preview(last) : row.kind === "room" ? "No messages yet" : "";
  if (last && row.kind === "room" && last.from && last.from !== store.uid) lastText = `${store.nameOf(last.from)}: ${lastText}`;
  if (last && last.from === store.uid) lastText = `You: ${lastText}`;
  const online = row.peer ? store.presence.get(row.peer)?.online : false;
  return html`
    <li class=${`conv ${active ? "active" : ""} ${row.unread > 0 ? "unread" : ""} kind-${row.kind}`} data-testid="conv-item" data-conv=${row.conv}>
      <a href=${`#/c/${encodeURIComponent(row.conv)}`}>
        <span class="avatar-wrap"><${Avatar} name=${title} id=${row.conv} kind=${row.kind} />${online && html`<i class="online-dot"></i>`}</span>
        <span class="conv-main">
          <span class="conv-top">
            <span class="conv-title" data-testid="conv-title">${title}</span>
            <time class="conv-time">${last ? shortTime(last.ts) : ""}</time>
          </span>
          <span class="conv-bottom">
            ${typing.length ? html`<span class="conv-last typing-text">typing…</span>` : html`<span class="conv-last" data-testid="conv-last">${lastText}</span>`}
            ${row.unread > 0 && html`<span class="badge" data-testid="conv-unread">${row.unread > 999 ? "999+" : row.unread}</span>`}
          </span>
        </span>
      </a>
    </li>
  `;
}

/** @param {{store: ChatStore}} props */
function Welcome({ store }) {
  return html`
    <div class="welcome">
      <div class="welcome-art" aria-hidden="true"><span class="brand-mark big"></span></div>
      <h2>Welcome, ${store.me.username}</h2>
      <p class="muted">Pick a conversation, start a chat with a username, or open Rooms to create and join group chats.</p>
    </div>
  `;
}

/** @param {{store: ChatStore, conv: string, onInfo: () => void, roomsButton: boolean}} props */
function Conversation({ store, conv, onInfo, roomsButton }) {
  const row = store.convs.get(conv) || store._row(conv);
  const v = store.view(conv);
  const title = store.title(row);
  const typing = store.typingNames(conv);
  const readOnly = row.kind === "sys";
  const peerRead = row.kind === "room" || row.kind === "sys" ? null : row.peerRead;
  return html`
    <header class="conv-head">
      <a class="icon-btn back" href="#/" aria-label="Back to conversations" title="Back">
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20z"/></svg>
      </a>
      <${Avatar} name=${title} id=${conv} kind=${row.kind} />
      <div class="conv-head-text">
        <h1>${title}</h1>
        ${row.kind === "single" && row.peer ? html`<${Presence} p=${store.presence.get(row.peer)} />` : null}
        ${row.kind === "room" && html`<button class="link" onClick=${onInfo}>${memberCount(store, row.room)}</button>`}
        ${row.kind === "sys" && html`<span class="muted small">Announcements from the team</span>`}
      </div>
      ${roomsButton
        ? html`<button class="icon-btn" data-testid="rooms-open" onClick=${onInfo} title="Rooms" aria-label="Rooms">${roomsIcon}</button>`
        : row.kind === "room" && html`<button class="icon-btn" onClick=${onInfo} title="Room info" aria-label="Room info">${roomsIcon}</button>`}
    </header>
    <${MessageList}
      conv=${conv} msgs=${v.msgs} pending=${v.pending} me=${store.uid} peerRead=${peerRead}
      nameOf=${(/** @type {number} */ uid) => store.nameOf(uid)} showNames=${row.kind === "room"}
      hasMore=${v.hasMore && v.loaded} loading=${v.loading}
      onLoadOlder=${() => store.loadOlder(conv)}
      empty=${readOnly ? "No announcements yet." : "No messages yet. Say hello!"} />
    <${TypingLine} names=${typing} />
    ${store.notice && html`<div class="notice" role="status">${store.notice}<button class="link" onClick=${() => { store.notice = ""; store.changed(); }}>Dismiss</button></div>`}
    ${readOnly
      ? html`<div class="readonly">Only administrators post here.</div>`
      : html`<${Composer} key=${conv} autofocus=${true} uploading=${(store.uploading || 0) > 0}
          onSend=${(/** @type {string} */ s) => store.sendText(conv, s)}
          onFile=${(/** @type {File} */ f) => store.sendFile(conv, f)}
          onTyping=${() => store.typingNow(conv)} />`}
  `;
}

/** @param {ChatStore} store @param {number|undefined} room */
function memberCount(store, room) {
  const m = room ? store.members.get(room) : undefined;
  return m ? `${m.length} member${m.length === 1 ? "" : "s"}` : "Members";
}

/** @param {{p: {online: boolean, last_seen: number}|undefined}} props */
function Presence({ p }) {
  const online = !!(p && p.online);
  return html`<span class=${`presence ${online ? "on" : ""}`} data-testid="presence" data-online=${online ? "true" : "false"}
    >${p ? (online ? "online" : ago(p.last_seen)) : ""}</span
  >`;
}

/** Rooms: the open room's members, creating a room, finding public rooms. @param {{store: ChatStore, onClose: () => void}} props */
function RoomsPanel({ store, onClose }) {
  const row = store.open ? store.convs.get(store.open) : undefined;
  const room = row && row.kind === "room" && row.room ? store.rooms.get(row.room) : undefined;
  return html`
    <aside class="panel" aria-label="Rooms">
      <header class="panel-head">
        <h2>Rooms</h2>
        <button class="icon-btn" onClick=${onClose} aria-label="Close" title="Close">✕</button>
      </header>
      <div class="panel-body">
        ${room && html`<${RoomInfo} key=${room.room_id} store=${store} room=${room} />`}
        <${CreateRoom} store=${store} onDone=${() => matchMedia("(max-width: 899px)").matches && onClose()} />
        <${FindRooms} store=${store} onDone=${() => matchMedia("(max-width: 899px)").matches && onClose()} />
      </div>
    </aside>
  `;
}

/** @param {{store: ChatStore, room: any}} props */
function RoomInfo({ store, room }) {
  const members = store.members.get(room.room_id) || [];
  const owner = room.owner === store.uid || members.some((m) => m.uid === store.uid && m.role === "owner");
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const add = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setError("");
    try {
      await store.addMember(room.room_id, name);
      setName("");
    } catch (err) {
      setError(describeError(err));
    }
  };
  const leave = async () => {
    setError("");
    try {
      await store.leaveRoom(room.room_id);
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <section class="panel-section">
      <h3>${room.name} ${room.private ? html`<span class="tag">private</span>` : html`<span class="tag">public</span>`}</h3>
      <ul class="members" data-testid="room-members">
        ${members.map(
          (m) => html`<li data-testid="room-member" data-uid=${m.uid} key=${m.uid}>
            <${Avatar} name=${m.username} id=${m.uid} size="small" />
            <span class="member-name">${m.username}${m.uid === store.uid ? " (you)" : ""}</span>
            ${m.role === "owner" && html`<span class="tag">owner</span>`}
            ${owner && m.uid !== store.uid && html`<button class="link danger" onClick=${() => store.removeMember(room.room_id, m.uid).catch((/** @type {any} */ e) => setError(describeError(e)))}>Remove</button>`}
          </li>`,
        )}
      </ul>
      ${owner && html`<form class="inline-form" onSubmit=${add}>
        <input placeholder="Add by username" value=${name} onInput=${(/** @type {any} */ e) => setName(e.target.value)} autocapitalize="none" aria-label="Username to add" />
        <button class="btn small" type="submit" disabled=${!name.trim()}>Add</button>
      </form>`}
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <button class="btn danger-outline small" data-testid="room-leave" onClick=${leave}>Leave room</button>
    </section>
  `;
}

/** @param {{store: ChatStore, onDone: () => void}} props */
function CreateRoom({ store, onDone }) {
  const [name, setName] = useState("");
  const [priv, setPriv] = useState(false);
  const [error, setError] = useState("");
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!name.trim()) return;
    setError("");
    try {
      const conv = await store.createRoom(name.trim(), priv);
      setName("");
      setPriv(false);
      openConv(conv);
      onDone();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <form class="panel-section" onSubmit=${submit}>
      <h3>Create a room</h3>
      <input data-testid="room-create-name" placeholder="Room name" value=${name} onInput=${(/** @type {any} */ e) => setName(e.target.value)} aria-label="Room name" />
      <label class="check"><input type="checkbox" data-testid="room-create-private" checked=${priv} onChange=${(/** @type {any} */ e) => setPriv(e.target.checked)} /> Private (only you add members)</label>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <button class="btn primary small" type="submit" data-testid="room-create-submit" disabled=${!name.trim()}>Create</button>
    </form>
  `;
}

/** @param {{store: ChatStore, onDone: () => void}} props */
function FindRooms({ store, onDone }) {
  const [q, setQ] = useState("");
  const [results, setResults] = useState(/** @type {any[]|null} */ (null));
  const [error, setError] = useState("");
  const [active, setActive] = useState(false); // search once the field is used
  useEffect(() => {
    if (!active) return;
    let stop = false;
    const t = setTimeout(async () => {
      try {
        const r = await store.api.publicRooms(q.trim(), 20);
        if (!stop) {
          setResults(r);
          setError("");
        }
      } catch (err) {
        if (!stop) setError(describeError(err));
      }
    }, 250);
    return () => {
      stop = true;
      clearTimeout(t);
    };
  }, [q, active]);
  const join = async (/** @type {any} */ r) => {
    setError("");
    try {
      const conv = store.rooms.has(r.room_id) ? `r:${r.room_id}` : await store.joinRoom(r);
      openConv(conv);
      onDone();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <section class="panel-section">
      <h3>Find public rooms</h3>
      <input data-testid="room-search" type="search" placeholder="Search by name" value=${q} onFocus=${() => setActive(true)}
        onInput=${(/** @type {any} */ e) => { setActive(true); setQ(e.target.value); }} aria-label="Search public rooms" />
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
      <ul class="results">
        ${(results || []).map(
          (r) => html`<li data-testid="room-result" data-room=${r.room_id} key=${r.room_id}>
            <${Avatar} name=${r.name} id=${`r:${r.room_id}`} size="small" kind="room" />
            <span class="result-text"><strong>${r.name}</strong><small class="muted">${r.members ?? "?"} member${r.members === 1 ? "" : "s"}</small></span>
            <button class="btn small" data-testid="room-join" onClick=${() => join(r)}>${store.rooms.has(r.room_id) ? "Open" : "Join"}</button>
          </li>`,
        )}
        ${results && results.length === 0 && html`<li class="muted small">No public rooms match.</li>`}
      </ul>
    </section>
  `;
}
