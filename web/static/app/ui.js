// @ts-check
// Components shared by the pages (/, and later /desk, /admin, /widget):
// sign-in, connection state, avatars, the message list and the composer.
// They take plain props; they know nothing of the store behind them.
import { html, useState, useRef, useEffect, useLayoutEffect } from "./lib.js";
import { safeURL, sameOrigin, clock, dayLabel, bytes, hue, initials } from "./format.js";
import { describeError } from "./session.js";

/**
 * The sign-in form.
 * @param {{title: string, subtitle?: string, onLogin: (u: string, p: string) => Promise<any>,
 *   onRegister?: (u: string, p: string) => Promise<any>}} props
 */
export function AuthForm({ title, subtitle, onLogin, onRegister }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);

  const run = async (/** @type {(u: string, p: string) => Promise<any>} */ fn) => {
    setError("");
    if (!username.trim() || !password) {
      setError("Enter a username and a password.");
      return;
    }
    setBusy(true);
    try {
      await fn(username.trim(), password);
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  const submit = (/** @type {Event} */ e) => {
    e.preventDefault();
    run(onLogin);
  };
  return html`
    <main class="auth">
      <form class="auth-card" onSubmit=${submit} novalidate>
        <div class="brand"><span class="brand-mark" aria-hidden="true"></span><span>${title}</span></div>
        ${subtitle && html`<p class="muted">${subtitle}</p>`}
        <label class="field">
          <span>Username</span>
          <input data-testid="auth-username" autocomplete="username" autocapitalize="none" spellcheck="false"
            value=${username} onInput=${(/** @type {any} */ e) => setUsername(e.target.value)} />
        </label>
        <label class="field">
          <span>Password</span>
          <input data-testid="auth-password" type="password" autocomplete="current-password"
            value=${password} onInput=${(/** @type {any} */ e) => setPassword(e.target.value)} />
        </label>
        ${error && html`<p class="auth-error" role="alert" data-testid="auth-error">${error}</p>`}
        <div class="auth-actions">
          <button class="btn primary" type="submit" data-testid="auth-login" disabled=${busy}>Sign in</button>
          ${onRegister &&
          html`<button class="btn" type="button" data-testid="auth-register" disabled=${busy}
            onClick=${() => run(onRegister)}>Create account</button>`}
        </div>
        <div class="auth-foot"><${ConnectionBadge} state="offline" /><span class="muted small">Not signed in</span></div>
      </form>
    </main>
  `;
}

/** Icons, inline SVG (emoji fonts are not everywhere). */
export const icons = {
  attach: html`<svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M16.5 6v11.5a4 4 0 0 1-8 0V5a2.5 2.5 0 0 1 5 0v10.5a1 1 0 0 1-2 0V6H10v9.5a2.5 2.5 0 0 0 5 0V5a4 4 0 0 0-8 0v12.5a5.5 5.5 0 0 0 11 0V6z"/></svg>`,
  file: html`<svg viewBox="0 0 24 24" width="28" height="28" aria-hidden="true"><path fill="currentColor" d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8zm-1 7V3.5L18.5 9zM8 13h8v1.5H8zm0 3h8v1.5H8z"/></svg>`,
  megaphone: html`<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M18 3v18l-6-4H8l1 4H6l-1-4a3 3 0 0 1-3-3v-4a3 3 0 0 1 3-3h7zm2 6.5a3 3 0 0 1 0 5z"/></svg>`,
  clock: html`<svg viewBox="0 0 24 24" width="12" height="12" aria-hidden="true"><path fill="currentColor" d="M12 2a10 10 0 1 0 0 20 10 10 0 0 0 0-20m1 10.6 3.2 1.9-.8 1.3L11 13V7h2z"/></svg>`,
  spinner: html`<svg class="spin" viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path fill="currentColor" d="M12 2a10 10 0 1 0 10 10h-2.5A7.5 7.5 0 1 1 12 4.5z"/></svg>`,
};

const stateText = /** @type {Record<string,string>} */ ({
  online: "Online",
  reconnecting: "Reconnecting…",
  connecting: "Connecting…",
  offline: "Offline",
});

/** The connection state: data-state online|reconnecting|offline. @param {{state: string}} props */
export function ConnectionBadge({ state }) {
  const s = state === "connecting" ? "reconnecting" : state;
  return html`<span class=${"conn conn-" + s} data-testid="connection" data-state=${s} title=${stateText[state] || state}
    ><span class="dot" aria-hidden="true"></span><span class="conn-text">${stateText[state] || state}</span></span
  >`;
}

/** A round avatar with initials. @param {{name: string, id?: any, size?: string, kind?: string}} props */
export function Avatar({ name, id, size, kind }) {
  const h = hue(id ?? name);
  const cls = `avatar ${size || ""} ${kind ? "avatar-" + kind : ""}`;
  return html`<span class=${cls} style=${`--h:${h}`} aria-hidden="true">${kind === "sys" ? icons.megaphone : initials(name)}</span>`;
}

/** The body of a message: text, an image, a file link or a card. Never HTML. @param {{env: any}} props */
export function MessageBody({ env }) {
  const b = env.body;
  switch (env.type) {
    case "text":
      return html`<div class="body text" data-testid="message-body">${typeof b === "string" ? b : ""}</div>`;
    case "image": {
      const url = safeURL(b && b.url);
      if (!url) return html`<div class="body" data-testid="message-body"><em>Image</em></div>`;
      if (!sameOrigin(url)) {
        return html`<div class="body" data-testid="message-body"><a href=${url} target="_blank" rel="noopener noreferrer">Image (external link)</a></div>`;
      }
      const w = b.width > 0 ? b.width : undefined;
      const hgt = b.height > 0 ? b.height : undefined;
      return html`<div class="body image" data-testid="message-body">
        <a href=${url} target="_blank" rel="noopener noreferrer"
          ><img src=${url} alt="Image" loading="lazy" width=${w} height=${hgt}
            style=${w && hgt ? `aspect-ratio:${w}/${hgt}` : ""} /></a>
      </div>`;
    }
    case "file": {
      const url = safeURL(b && b.url);
      const name = (b && typeof b.name === "string" && b.name) || "file";
      return html`<div class="body file" data-testid="message-body">
        <span class="file-icon">${icons.file}</span>
        <span class="file-meta">
          ${url ? html`<a href=${url} target="_blank" rel="noopener noreferrer" download=${name}>${name}</a>` : html`<span>${name}</span>`}
          ${b && b.size >= 0 && html`<small class="muted">${bytes(b.size)}</small>`}
        </span>
      </div>`;
    }
    case "card": {
      const url = safeURL(b && b.url);
      const img = safeURL(b && b.image);
      return html`<div class="body card" data-testid="message-body">
        ${img && sameOrigin(img) && html`<img src=${img} alt="" loading="lazy" />`}
        <div class="card-text">
          <strong>${(b && b.title) || ""}</strong>
          ${b && b.description && html`<p>${b.description}</p>`}
          ${url && html`<a href=${url} target="_blank" rel="noopener noreferrer">${new URL(url).host}</a>`}
        </div>
      </div>`;
    }
  }
  return html`<div class="body" data-testid="message-body"><em>Unsupported message</em></div>`;
}

const statusIcon = /** @type {Record<string,any>} */ ({ pending: icons.clock, sent: "✓", read: "✓✓", failed: "!" });
const statusTitle = /** @type {Record<string,string>} */ ({ pending: "Sending…", sent: "Sent", read: "Read", failed: "Not sent" });

/** @param {{state: string}} props */
function Status({ state }) {
  const s = state === "failed" ? "pending" : state;
  return html`<span class=${"status status-" + state} data-testid="message-status" data-state=${s} title=${statusTitle[state]}
    >${statusIcon[state]}</span
  >`;
}

/**
 * A conversation's messages, oldest first, with pending sends at the end.
 * Scrolling to the top asks for older ones.
 * @param {{conv: string, msgs: any[], pending: any[], me: number, peerRead: number|null,
 *   nameOf: (uid: number) => string, showNames: boolean, hasMore: boolean, loading: boolean,
 *   onLoadOlder: () => Promise<boolean>, empty?: any}} props
 */
export function MessageList({ conv, msgs, pending, me, peerRead, nameOf, showNames, hasMore, loading, onLoadOlder, empty }) {
  const ref = useRef(/** @type {HTMLElement|null} */ (null));
  const stick = useRef(true); // at the bottom: follow new messages
  const anchor = useRef(/** @type {{height: number, top: number}|null} */ (null));
  const lastConv = useRef("");

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (lastConv.current !== conv) {
      lastConv.current = conv;
      stick.current = true;
    }
    if (anchor.current) {
      // Older messages were added above: keep what the user looked at in place.
      el.scrollTop = el.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    } else if (stick.current) {
      el.scrollTop = el.scrollHeight;
    }
  });

  const older = async () => {
    const el = ref.current;
    if (!el || loading || !hasMore) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop };
    const added = await onLoadOlder();
    if (!added) anchor.current = null;
  };

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
    if (el.scrollTop < 80) older();
  };

  // A short first page may not fill the screen: load more until it scrolls.
  useEffect(() => {
    const el = ref.current;
    if (el && hasMore && !loading && msgs.length && el.scrollHeight <= el.clientHeight + 10) older();
  });

  const items = [];
  let day = "";
  let prevFrom = -1;
  for (const env of msgs) {
    const d = dayLabel(env.ts);
    if (d !== day) {
      day = d;
      prevFrom = -1;
      items.push(html`<li class="day" key=${"d" + env.seq}><span>${d}</span></li>`);
    }
    const mine = env.from === me;
    const state = mine ? (peerRead !== null && peerRead >= env.seq ? "read" : "sent") : "";
    const first = env.from !== prevFrom;
    prevFrom = env.from;
    items.push(html`
      <li key=${env.seq} class=${`msg ${mine ? "mine" : "theirs"} ${first ? "first" : ""} ${env.from === 0 ? "system" : ""}`}
        data-testid="message" data-seq=${env.seq} data-from=${env.from} data-cid=${env.cid || undefined}>
        ${showNames && !mine && first && env.from !== 0 && html`<div class="sender">${nameOf(env.from)}</div>`}
        <div class="bubble">
          <${MessageBody} env=${env} />
          <div class="meta"><time>${clock(env.ts)}</time>${mine && html`<${Status} state=${state} />`}</div>
        </div>
      </li>
    `);
  }
  for (const p of pending) {
    items.push(html`
      <li key=${"p" + p.cid} class="msg mine pending" data-testid="message" data-from=${me} data-cid=${p.cid}>
        <div class="bubble">
          <${MessageBody} env=${{ ...p.message, ts: p.since }} />
          <div class="meta">
            ${p.failed ? html`<span class="failed">${p.failed}</span>` : html`<time>${clock(p.since)}</time>`}
            <${Status} state=${p.failed ? "failed" : "pending"} />
          </div>
        </div>
      </li>
    `);
  }
  return html`
    <ol class="messages" ref=${ref} onScroll=${onScroll} data-testid="message-list" data-conv=${conv} aria-live="polite">
      ${hasMore ? html`<li class="loading-older">${loading ? "Loading…" : ""}</li>` : msgs.length > 0 && html`<li class="start">This is the beginning of the conversation.</li>`}
      ${items.length ? items : !loading && html`<li class="empty-conv">${empty || "No messages yet. Say hello!"}</li>`}
    </ol>
  `;
}

/**
 * The composer: Enter sends, Shift+Enter is a new line; attach uploads and
 * sends at once. With canned replies, typing "/" at the start lists them
 * (filtered by what follows); choosing one (click, or arrows and Enter or
 * Tab) puts its text in the composer.
 * @param {{onSend: (s: string) => void, onFile?: (f: File) => void, onTyping?: () => void,
 *   disabled?: boolean, placeholder?: string, uploading?: boolean, autofocus?: boolean,
 *   canned?: {id: number, shortcut: string, text: string}[], tools?: any}} props
 */
export function Composer({ onSend, onFile, onTyping, disabled, placeholder, uploading, autofocus, canned, tools }) {
  const [value, setValue] = useState("");
  const [active, setActive] = useState(0);
  const [dismissed, setDismissed] = useState(false);
  const ta = useRef(/** @type {HTMLTextAreaElement|null} */ (null));

  useLayoutEffect(() => {
    const el = ta.current;
    if (!el) return;
    el.style.height = "auto";
    // Not laid out (a hidden iframe): leave the height to the stylesheet.
    if (el.scrollHeight > 0) el.style.height = Math.min(el.scrollHeight, 160) + "px";
  }, [value]);
  useEffect(() => {
    if (autofocus && ta.current && matchMedia("(pointer: fine)").matches) ta.current.focus();
  }, [autofocus]);

  const matches = cannedMatches(canned, value, dismissed);
  const pick = (/** @type {{text: string}} */ c) => {
    setValue(c.text);
    setDismissed(true);
    const el = ta.current;
    if (el) {
      el.focus();
      requestAnimationFrame(() => el.setSelectionRange(el.value.length, el.value.length));
    }
  };
  const send = () => {
    const s = value.trim();
    if (!s || disabled) return;
    onSend(s);
    setValue("");
    setDismissed(false);
  };
  const onKeyDown = (/** @type {KeyboardEvent} */ e) => {
    if (matches.length) {
      const i = Math.min(active, matches.length - 1);
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        setActive((i + (e.key === "ArrowDown" ? 1 : matches.length - 1)) % matches.length);
        return;
      }
      if ((e.key === "Enter" && !e.shiftKey && !e.isComposing) || e.key === "Tab") {
        e.preventDefault();
        pick(matches[i]);
        return;
      }
      if (e.key === "Escape") {
        e.preventDefault();
        setDismissed(true);
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  };
  const onInput = (/** @type {any} */ e) => {
    const v = e.target.value;
    setValue(v);
    setActive(0);
    if (!v.startsWith("/")) setDismissed(false);
    if (v && onTyping) onTyping();
  };
  const onPick = (/** @type {any} */ e) => {
    const files = [...(e.target.files || [])];
    e.target.value = "";
    if (onFile) for (const f of files) onFile(f);
  };
  return html`
    <div class="composer-wrap">
      ${matches.length > 0 &&
      html`<ul class="canned-list" data-testid="canned-list" role="listbox" aria-label="Canned replies">
        ${matches.map(
          (c, i) => html`<li key=${c.id} role="option" aria-selected=${i === Math.min(active, matches.length - 1)}>
            <button type="button" data-testid="canned-item" data-id=${c.id}
              class=${i === Math.min(active, matches.length - 1) ? "active" : ""}
              onMouseDown=${(/** @type {Event} */ e) => e.preventDefault()} onClick=${() => pick(c)}>
              <span class="canned-short">/${c.shortcut}</span><span class="canned-text">${c.text}</span>
            </button>
          </li>`,
        )}
      </ul>`}
      <div class="composer">
        ${onFile &&
        html`<label class="icon-btn attach" title="Attach a file">
          ${uploading ? icons.spinner : icons.attach}
          <input type="file" data-testid="attach" aria-label="Attach a file" onChange=${onPick} disabled=${disabled} />
        </label>`}
        ${tools}
        <textarea ref=${ta} data-testid="composer" rows="1" placeholder=${placeholder || "Write a message"}
          value=${value} onInput=${onInput} onKeyDown=${onKeyDown} disabled=${disabled}></textarea>
        <button class="send-btn" data-testid="send" onClick=${send} disabled=${disabled || !value.trim()} title="Send" aria-label="Send">
          <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true"><path fill="currentColor" d="M3.4 20.4 21 12 3.4 3.6 3.4 10l12.6 2-12.6 2z"/></svg>
        </button>
      </div>
    </div>
  `;
}

/**
 * The canned replies to offer for what the composer holds: "/" then a
 * filter on the shortcut or the text.
 * @param {{id: number, shortcut: string, text: string}[]|undefined} canned @param {string} value @param {boolean} dismissed
 */
export function cannedMatches(canned, value, dismissed) {
  if (!canned || !canned.length || dismissed || !value.startsWith("/") || value.includes("\n")) return [];
  const f = value.slice(1).trim().toLowerCase();
  const out = canned.filter((c) => !f || c.shortcut.toLowerCase().includes(f) || c.text.toLowerCase().includes(f));
  out.sort((a, b) => Number(!a.shortcut.toLowerCase().startsWith(f)) - Number(!b.shortcut.toLowerCase().startsWith(f)));
  return out.slice(0, 8);
}

/** "alice is typing…", visible while someone types. @param {{names: string[]}} props */
export function TypingLine({ names }) {
  if (!names.length) return html`<div class="typing-line" aria-hidden="true"></div>`;
  const who = names.length === 1 ? `${names[0]} is typing` : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]} are typing`;
  return html`<div class="typing-line" data-testid="typing"><span class="dots" aria-hidden="true"><i></i><i></i><i></i></span>${who}…</div>`;
}
