// @ts-check
// The customer chat inside the widget's iframe: one shop, one
// conversation (s:{shop}:{me}). The visitor is a guest whose token is kept
// in this origin's localStorage (created at the first message, so merely
// opening a page creates nothing), or a visitor verified by the shop.
// Sends that are not acknowledged yet are kept in localStorage too and
// resent with the same cid after a reload: nothing is lost, nothing is
// stored twice.
import { Observable } from "./observable.js";
import { Api, Client, ImError, text as textMsg, randomId } from "../sdk/imclient.js";
import { History } from "./history.js";
import { Names } from "./names.js";

/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */
/** @typedef {import("../sdk/imclient.js").Token} Token */

/**
 * @typedef {object} Embed what the host page told the iframe
 * @property {string} [uid] the shop's id of a verified visitor
 * @property {string} [hash] its HMAC
 * @property {string} [name] its display name
 * @property {string} [url] the page the widget is on
 * @property {string} [title]
 */

/** @typedef {{cid: string, type: string, body: any, uid: number, since: number}} Saved */

const guestKey = "imserver.widget.guest";

export class WidgetStore extends Observable {
  /** @param {number} shop @param {Embed} embed @param {boolean} embedded */
  constructor(shop, embed, embedded) {
    super();
    this.shop = shop;
    this.embed = embed;
    this.embedded = embedded;
    this.api = new Api();
    /** @type {Token|null} */
    this.token = null;
    /** @type {Client|null} */
    this.client = null;
    this.uid = 0;
    this.conv = "";
    /** "idle": no account yet; "starting": signing in; else the SDK's state. */
    this.state = "idle";
    this.history = new History(this.api, () => this.changed());
    this.names = new Names(null, () => this.changed()); // guests may not look names up
    /** @type {{session: number, position: number, eta_s: number|null}|null} */
    this.queue = null;
    this.agent = 0;
    this.session = 0;
    this.closed = false;
    this.peerRead = 0;
    this.readSeq = 0;
    this.lastSeq = 0;
    this.typingUntil = 0;
    this.typingUid = 0;
    this.unread = 0;
    this.open = !embedded;
    this.visible = document.visibilityState === "visible";
    this.notice = "";
    this.uploading = 0;
    /** @type {{cid: string, message: any, since: number}[]} sends waiting for the account */
    this.early = [];
    this.guestName = "";
    /** @type {Promise<boolean>|null} */
    this._starting = null;
    this._contextSent = "";
    this.pendingKey = `imserver.widget.pending.${shop}`;
    this.queueKey = `imserver.widget.queue.${shop}`;
  }

  /** The storage key of this identity's token. */
  _tokenKey() {
    return this.embed.uid ? `imserver.widget.visitor.${this.shop}.${this.embed.uid}` : guestKey;
  }

  /** Signs in with what there is (a kept token, or a verified visitor); a new guest waits for the first message. */
  async start() {
    const saved = this._loadToken();
    if (saved || (this.embed.uid && this.embed.hash)) {
      await this._ensureAccount();
    } else if (this._loadSaved().length) {
      // Written before a reload, never sent: carry on.
      await this._ensureAccount();
    }
    this.changed();
  }

  /** @returns {Token|null} */
  _loadToken() {
    try {
      const t = JSON.parse(localStorage.getItem(this._tokenKey()) || "null");
      return t && t.access_token && t.uid ? t : null;
    } catch {
      return null;
    }
  }

  /** Signs in (a kept token, a visitor, or a new guest) and connects; once. */
  _ensureAccount() {
    if (this.client) return Promise.resolve(true);
    if (!this._starting) {
      this._starting = this._signIn().finally(() => {
        this._starting = null;
      });
    }
    return this._starting;
  }

  async _signIn() {
    this.state = "starting";
    this.changed();
    let token = this._loadToken();
    if (token) {
      try {
        await this.api.withToken(token.access_token).me();
      } catch (e) {
        if (e instanceof ImError && e.status === 401) {
          token = null;
          localStorage.removeItem(this._tokenKey());
        }
        // unreachable: keep it, the client connects when the server is back
      }
    }
    for (let attempt = 0; !token; attempt++) {
      try {
        if (this.embed.uid && this.embed.hash) {
          token = await this.api.visitor({ shop_id: this.shop, external_id: this.embed.uid, hash: this.embed.hash, name: this.embed.name || undefined });
        } else {
          token = await this.api.guest(this.guestName.trim().slice(0, 64) || this.embed.name || undefined);
        }
      } catch (e) {
        if (e instanceof ImError && e.status === 401 && this.embed.uid) {
          // The shop's signature does not match: continue as a guest.
          this.embed = { url: this.embed.url, title: this.embed.title };
          continue;
        }
        this.notice =
          e instanceof ImError && e.code === "rate_limited"
            ? "Too many new chats from your network. Retrying in a moment…"
            : "Cannot reach the chat right now. Retrying…";
        this.changed();
        await new Promise((r) => setTimeout(r, Math.min(30000, 3000 * 2 ** Math.min(attempt, 3))));
        continue;
      }
      localStorage.setItem(this._tokenKey(), JSON.stringify(token));
    }
    this.notice = "";
    this._use(token);
    const c = /** @type {Client} */ (this.client);
    try {
      await c.connect();
    } catch (e) {
      if (e instanceof ImError && e.code === "unauthorized") {
        this._forget();
        return false;
      }
    }
    await this.refresh();
    await this.history.loadNewest(this.conv);
    this._sendEarly();
    this._resendSaved();
    this.sendContext();
    this.markRead();
    return true;
  }

  /** @param {Token} token */
  _use(token) {
    this.token = token;
    this.uid = token.uid;
    this.conv = `s:${this.shop}:${token.uid}`;
    this.names.learn(token.uid, token.username, this.embed.name);
    this.history.api = this.api = this.api.withToken(token.access_token);
    const c = new Client({ token, noBroadcast: true });
    this.client = c;
    this.state = c.state;
    c.on("state", (/** @type {string} */ s) => {
      const again = s === "online" && this.state === "reconnecting";
      this.state = s;
      if (again) {
        this.refresh();
        this.history.catchUp(this.conv);
      }
      this.changed();
    });
    c.on("message", (/** @type {Envelope} */ env) => this._onMessage(env));
    c.on("send", (/** @type {any} */ ev) => {
      if (ev.conv !== this.conv) return;
      this.history.onSend(ev);
      if (ev.state === "sent" || ev.state === "failed") this._unsave(ev.cid);
      this.changed();
    });
    c.on("read", (/** @type {any} */ ev) => {
      if (ev.conv !== this.conv) return;
      if (ev.uid === this.uid) this.readSeq = Math.max(this.readSeq, ev.seq);
      else this.peerRead = Math.max(this.peerRead, ev.seq);
      this.changed();
    });
    c.on("typing", (/** @type {any} */ ev) => {
      if (ev.conv !== this.conv || ev.uid === this.uid) return;
      this.typingUid = ev.uid;
      this.typingUntil = Date.now() + 5000;
      setTimeout(() => this.changed(), 5050);
      this.changed();
    });
    c.on("cs_queue", (/** @type {any} */ ev) => {
      if (ev.shop !== this.shop) return;
      this.queue = { session: ev.session, position: ev.position, eta_s: ev.eta_s ?? null };
      this.session = ev.session;
      this.agent = 0;
      this.closed = false;
      this._saveQueue();
      this.changed();
    });
    const assigned = (/** @type {any} */ ev) => {
      if (ev.shop !== this.shop) return;
      if (ev.agent && ev.agent_name) this.names.learn(ev.agent, ev.agent_name);
      this.session = ev.session;
      this.agent = ev.agent || 0;
      if (this.agent) this.queue = null;
      this.closed = false;
      this._saveQueue();
      this.changed();
    };
    c.on("cs_assigned", assigned);
    c.on("cs_transferred", assigned);
    c.on("cs_closed", (/** @type {any} */ ev) => {
      if (ev.shop !== this.shop) return;
      this.agent = 0;
      this.queue = null;
      this.closed = true;
      this._saveQueue();
      this.changed();
    });
    c.on("unauthorized", () => this._forget());
  }

  /** The token is refused (revoked, the account disabled): start over as a new guest at the next message. */
  _forget() {
    localStorage.removeItem(this._tokenKey());
    if (this.client) this.client.close();
    this.client = null;
    this.token = null;
    this.state = "idle";
    this.conv = "";
    this.queue = null;
    this.agent = 0;
    this.history = new History(new Api(), () => this.changed());
    this.api = new Api();
    this.changed();
  }

  /** Read state, assignment and the queue position after a (re)load. */
  async refresh() {
    let rows;
    try {
      rows = await this.api.conversations();
    } catch {
      return;
    }
    const row = rows.find((r) => r.conv === this.conv);
    if (!row) return;
    this.lastSeq = Math.max(this.lastSeq, row.last_seq);
    this.readSeq = Math.max(this.readSeq, row.read_seq);
    const peer = /** @type {any} */ (row).peer_read_seq;
    if (typeof peer === "number") this.peerRead = Math.max(this.peerRead, peer);
    const last = row.last_message;
    if (last && last.session) {
      if (last.session !== this.session) this.closed = false;
      this.session = last.session;
      if (last.agent) {
        this.agent = last.agent;
        this.queue = null;
      } else if (!this.agent) {
        // Queued: the position comes with cs_queue events; show the last one known.
        const q = this._loadQueue();
        if (q && q.session === last.session) this.queue = q;
      }
    }
    this.changed();
  }

  _saveQueue() {
    try {
      localStorage.setItem(this.queueKey, JSON.stringify(this.queue || null));
    } catch {
      // not needed for correctness
    }
  }

  /** @returns {{session: number, position: number, eta_s: number|null}|null} */
  _loadQueue() {
    try {
      const q = JSON.parse(localStorage.getItem(this.queueKey) || "null");
      return q && q.session > 0 && q.position > 0 ? q : null;
    } catch {
      return null;
    }
  }

  /** @param {Envelope} env */
  _onMessage(env) {
    if (env.conv !== this.conv) return;
    this.history.add(env);
    this._unsave(env.cid || "");
    this.lastSeq = Math.max(this.lastSeq, env.seq);
    if (env.session && env.session !== this.session) {
      this.session = env.session;
      this.closed = false;
    }
    if (env.agent) {
      this.agent = env.agent;
      this.queue = null;
    }
    if (env.from === this.uid) {
      this.readSeq = Math.max(this.readSeq, env.seq);
      this.closed = false;
    } else {
      if (env.from === this.typingUid) this.typingUntil = 0;
      if (this.open && this.visible) {
        this.markRead();
      } else {
        this.unread++;
        this._tellUnread();
      }
    }
    this.changed();
  }

  _tellUnread() {
    if (this.embedded) window.parent.postMessage({ imserver: "unread", count: this.unread }, "*");
  }

  markRead() {
    if (!this.client || !this.open || !this.visible) return;
    const newest = this.history.newest(this.conv);
    const seq = Math.max(this.lastSeq, newest ? newest.seq : 0);
    if (this.unread) {
      this.unread = 0;
      this._tellUnread();
    }
    if (seq > this.readSeq) {
      this.readSeq = seq;
      this.client.markRead(this.conv, seq).catch(() => {});
    }
  }

  /** @param {boolean} v */
  setOpen(v) {
    this.open = v;
    if (v) this.markRead();
    this.changed();
  }

  /** @param {boolean} v */
  setVisible(v) {
    this.visible = v;
    if (v) this.markRead();
    this.changed();
  }

  /** The host page changed (a single-page app navigating). @param {string} url @param {string} title */
  setContext(url, title) {
    this.embed = { ...this.embed, url, title };
    this.sendContext();
  }

  /** Tells the shop's agents the page the customer writes from (once per page). */
  sendContext() {
    if (!this.client || !this.embed.url) return;
    const key = `${this.embed.url}\n${this.embed.title || ""}`;
    if (key === this._contextSent) return;
    this._contextSent = key;
    /** @type {{url: string, title?: string}} */
    const page = { url: this.embed.url };
    if (this.embed.title) page.title = this.embed.title;
    this.api.setContext(this.shop, page).catch(() => {
      this._contextSent = "";
    });
  }

  // ---------------------------------------------------------- sending

  /** @returns {Saved[]} */
  _loadSaved() {
    try {
      const list = JSON.parse(localStorage.getItem(this.pendingKey) || "[]");
      return Array.isArray(list) ? list.filter((x) => x && typeof x.cid === "string" && typeof x.type === "string") : [];
    } catch {
      return [];
    }
  }

  /** @param {Saved[]} list */
  _storeSaved(list) {
    try {
      if (list.length) localStorage.setItem(this.pendingKey, JSON.stringify(list.slice(-50)));
      else localStorage.removeItem(this.pendingKey);
    } catch {
      // storage full: the send still goes out from this page
    }
  }

  /** @param {string} cid @param {{type: string, body: any}} msg */
  _save(cid, msg) {
    const list = this._loadSaved().filter((x) => x.cid !== cid);
    list.push({ cid, type: msg.type, body: msg.body, uid: this.uid, since: Date.now() });
    this._storeSaved(list);
  }

  /** @param {string} cid */
  _unsave(cid) {
    if (!cid) return;
    const list = this._loadSaved();
    const rest = list.filter((x) => x.cid !== cid);
    if (rest.length !== list.length) this._storeSaved(rest);
  }

  /** Sends again what a previous page left unacknowledged, with the same cids. */
  _resendSaved() {
    const c = this.client;
    if (!c) return;
    const shown = new Set(this.history.view(this.conv).msgs.map((e) => e.cid));
    for (const x of this._loadSaved()) {
      if (x.uid && x.uid !== this.uid) {
        this._unsave(x.cid);
        continue;
      }
      if (shown.has(x.cid)) {
        this._unsave(x.cid);
        continue;
      }
      if (!x.uid) this._save(x.cid, x);
      if (c.pending().some((p) => p.cid === x.cid)) continue;
      c.send(this.conv, { cid: x.cid, type: x.type, body: x.body }).catch(() => {});
    }
  }

  _sendEarly() {
    const c = this.client;
    if (!c) return;
    const early = this.early;
    this.early = [];
    for (const e of early) {
      this._save(e.cid, e.message);
      c.send(this.conv, { cid: e.cid, type: e.message.type, body: e.message.body }).catch(() => {});
    }
    this.changed();
  }

  /** @param {string} s */
  sendText(s) {
    const msg = textMsg(s);
    const cid = `w${randomId(10)}`;
    if (!this.client) {
      // No account yet: shown as pending, kept across a reload, sent once signed in.
      this.early.push({ cid, message: msg, since: Date.now() });
      this._saveEarly(cid, msg);
      this.changed();
      this._ensureAccount();
      return;
    }
    this._save(cid, msg);
    this.client.send(this.conv, { ...msg, cid }).catch(() => {});
  }

  /** @param {string} cid @param {{type: string, body: any}} msg */
  _saveEarly(cid, msg) {
    const list = this._loadSaved().filter((x) => x.cid !== cid);
    list.push({ cid, type: msg.type, body: msg.body, uid: 0, since: Date.now() });
    this._storeSaved(list);
  }

  /** @param {File} f */
  async sendFile(f) {
    this.notice = "";
    this.uploading++;
    this.changed();
    try {
      if (!(await this._ensureAccount()) || !this.client) throw new ImError({ code: "network", message: "not signed in" });
      await this.client.sendUpload(this.conv, f, f.name);
    } catch (e) {
      this.notice =
        e instanceof ImError && (e.code === "payload_too_large" || e.code === "too_large")
          ? "That file is too large."
          : `Could not send the file: ${e instanceof Error ? e.message : e}`;
    } finally {
      this.uploading--;
      this.changed();
    }
  }

  typingNow() {
    if (this.client && this.conv) this.client.typing(this.conv);
  }

  /** What the conversation shows: stored messages, pending sends (early ones included). */
  view() {
    const v = this.history.view(this.conv || "-");
    const early = this.early.map((e) => ({ cid: e.cid, conv: this.conv, message: e.message, since: e.since }));
    if (!this.client) {
      // Before signing in, sends kept from an earlier page are pending too.
      for (const x of this._loadSaved()) {
        if (!early.some((e) => e.cid === x.cid)) early.push({ cid: x.cid, conv: "", message: { type: x.type, body: x.body }, since: x.since });
      }
    }
    return { ...v, pending: [...v.pending, ...early] };
  }

  typingName() {
    if (this.typingUntil <= Date.now() || !this.typingUid) return "";
    return this.names.label(this.typingUid, "Agent");
  }

  agentName() {
    return this.agent ? this.names.label(this.agent, "An agent") : "";
  }
}
