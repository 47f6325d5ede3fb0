// @ts-check
// The agent desk's state in one place: the shops the agent serves, each
// shop's queue, the agent's open sessions, their conversations, typing and
// read state, canned replies, customers. Fed by the SDK's events (cs_*,
// messages, read, typing) and REST; components read it and call its
// methods, and re-render on every change.
import { Observable } from "./observable.js";
import { Client, parseConv, text as textMsg, card as cardMsg, ImError } from "../sdk/imclient.js";
import { History } from "./history.js";
import { Names } from "./names.js";
import { Alerts } from "./alerts.js";
import { preview } from "./format.js";

/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */
/** @typedef {import("../sdk/imclient.js").Token} Token */
/** @typedef {import("../sdk/imclient.js").Shop} Shop */
/** @typedef {import("../sdk/imclient.js").Canned} Canned */
/** @typedef {import("../sdk/imclient.js").Agent} Agent */
/** @typedef {import("../sdk/imclient.js").Customer} Customer */

/**
 * @typedef {object} QueueItem
 * @property {number} session_id
 * @property {number} shop_id
 * @property {number} customer
 * @property {string} conv
 * @property {number} created_at ms
 */

/**
 * @typedef {object} SessionRow
 * @property {number} session_id
 * @property {number} shop_id
 * @property {number} customer
 * @property {number|null} agent
 * @property {string} conv
 * @property {number} created_at ms
 */

/**
 * @typedef {object} ConvState
 * @property {number} lastSeq
 * @property {number} readSeq the agent's own read position
 * @property {number} peerRead the customer's
 * @property {Envelope|null} last
 */

const shopKey = "imserver.desk.shop";
const availabilityKey = "imserver.desk.availability";

/** @param {number} shop @param {number} customer */
const serviceConv = (shop, customer) => `s:${shop}:${customer}`;

export class DeskStore extends Observable {
  /** @param {Token} token @param {{onUnauthorized: () => void}} hooks */
  constructor(token, hooks) {
    super();
    this.me = token;
    this.uid = token.uid;
    this.admin = token.role === "admin";
    this.hooks = hooks;
    this.client = new Client({ token, noBroadcast: true });
    this.api = this.client.api;
    this.names = new Names(this.api, () => this.changed());
    this.names.learn(this.uid, token.username);
    this.history = new History(this.api, () => this.changed());
    this.alerts = new Alerts("Desk · imserver");
    /** @type {string} the connection: connecting, online, reconnecting, offline */
    this.state = this.client.state;
    /** @type {Shop[]} the shops the agent serves (admins: all) */
    this.shops = [];
    this.loaded = false;
    this.shopId = 0;
    /** @type {Map<number, QueueItem>} */
    this.queue = new Map();
    /** @type {Map<number, SessionRow>} */
    this.sessions = new Map();
    /** @type {Map<string, ConvState>} */
    this.convs = new Map();
    /** @type {Map<string, Map<number, number>>} conv → uid → until (ms) */
    this.typing = new Map();
    this.openId = 0;
    this._tick = 0;
    /** @type {Map<string, number>} "q{id}"/"s{id}" → tick of the last event that changed it */
    this._touched = new Map();
    /** @type {"online"|"away"} */
    this.availability = localStorage.getItem(availabilityKey) === "away" ? "away" : "online";
    /** @type {Map<number, Canned[]>} */
    this.canned = new Map();
    /** @type {Map<number, Agent[]>} */
    this.agents = new Map();
    /** @type {Map<string, Customer & {loadedAt: number}>} "shop:uid" → */
    this.customers = new Map();
    this.visible = document.visibilityState === "visible";
    this.notice = "";
    this.uploading = 0;
    /** @type {Function[]} */
    this._unsubs = [];
    this._wasOnline = false;
    this._wire();
  }

  /** @param {string} s */
  setNotice(s) {
    this.notice = s;
    this.changed();
  }

  _wire() {
    const c = this.client;
    const on = (/** @type {string} */ ev, /** @type {Function} */ fn) => this._unsubs.push(c.on(ev, fn));
    on("state", (/** @type {string} */ s) => {
      this.state = s;
      if (s === "online") {
        // After a reconnect, events may have been missed: reload what they feed.
        if (this._wasOnline) this.reload();
        this._wasOnline = true;
      }
      this.changed();
    });
    on("message", (/** @type {Envelope} */ env) => this._onMessage(env));
    on("send", (/** @type {any} */ ev) => {
      this.history.onSend(ev);
      this.changed();
    });
    on("read", (/** @type {any} */ ev) => {
      const cv = this._conv(ev.conv);
      if (ev.uid === this.uid) {
        cv.readSeq = Math.max(cv.readSeq, ev.seq); // another tab of this agent
      } else {
        cv.peerRead = Math.max(cv.peerRead, ev.seq);
      }
      this.changed();
    });
    on("typing", (/** @type {any} */ ev) => {
      if (ev.uid === this.uid || typeof ev.conv !== "string") return;
      let m = this.typing.get(ev.conv);
      if (!m) this.typing.set(ev.conv, (m = new Map()));
      m.set(ev.uid, Date.now() + 5000);
      setTimeout(() => this.changed(), 5050);
      this.changed();
    });
    on("cs_assigned", (/** @type {any} */ ev) => this._onAssigned(ev));
    on("cs_transferred", (/** @type {any} */ ev) => {
      this._learnEventNames(ev);
      if (ev.agent === this.uid) {
        this._onAssigned(ev);
        return;
      }
      this._dropSession(ev.session, ev.agent ? `Session transferred to ${this.names.label(ev.agent, ev.agent_name)}.` : "");
    });
    on("cs_closed", (/** @type {any} */ ev) => {
      this._learnEventNames(ev);
      this._dropSession(ev.session, "");
    });
    on("cs_queued", (/** @type {any} */ ev) => {
      if (!this._serves(ev.shop)) return;
      const fresh = !this.queue.has(ev.session);
      this._qSet(ev.session, {
        session_id: ev.session,
        shop_id: ev.shop,
        customer: ev.customer,
        conv: ev.conv || serviceConv(ev.shop, ev.customer),
        created_at: ev.created_at || Date.now(),
      });
      this.names.want([ev.customer]);
      // Back in the queue (its agent went away and the customer wrote, or
      // the server restarted): no longer this agent's, unless it comes back.
      if (this._sDel(ev.session) && this.openId === ev.session) this.notice = "This customer is back in the queue.";
      if (fresh) {
        this.alerts.alert({
          title: "A customer is waiting",
          body: `${this.names.label(ev.customer)} · ${this.shopName(ev.shop)}`,
          tag: `queue-${ev.session}`,
          onClick: () => this.setShop(ev.shop),
        });
      }
      this.changed();
    });
    on("cs_dequeued", (/** @type {any} */ ev) => {
      if (this._qDel(ev.session)) this.changed();
    });
    on("unauthorized", () => this.hooks.onUnauthorized());
    on("error", (/** @type {ImError} */ e) => this.setNotice(e.message));
  }

  /** @param {any} ev */
  _learnEventNames(ev) {
    if (ev.customer_name) this.names.learn(ev.customer, "", ev.customer_name);
    if (ev.agent && ev.agent_name) this.names.learn(ev.agent, ev.agent_name);
  }

  /** @param {any} ev a cs_assigned (or a cs_transferred to this agent) */
  _onAssigned(ev) {
    this._learnEventNames(ev);
    if (ev.agent !== this.uid) return;
    this._qDel(ev.session);
    const fresh = !this.sessions.has(ev.session);
    this._sSet(ev.session, {
      session_id: ev.session,
      shop_id: ev.shop,
      customer: ev.customer,
      agent: ev.agent,
      conv: ev.conv || serviceConv(ev.shop, ev.customer),
      created_at: this.sessions.get(ev.session)?.created_at || Date.now(),
    });
    this.names.want([ev.customer]);
    if (fresh) {
      this.alerts.alert({
        title: "New session",
        body: `${this.names.label(ev.customer)} · ${this.shopName(ev.shop)}`,
        tag: `session-${ev.session}`,
        onClick: () => {
          this.setShop(ev.shop);
          this.setOpen(ev.session);
        },
      });
    }
    this.changed();
  }

  /** @param {number} id @param {string} why */
  _dropSession(id, why) {
    const had = this._sDel(id);
    if (this.openId === id) {
      this.openId = 0;
      if (why) this.notice = why;
    }
    if (had) this.changed();
  }

  /** @param {number} shop */
  _serves(shop) {
    return this.shops.some((s) => s.shop_id === shop);
  }

  /** @param {number} shop */
  shopName(shop) {
    return this.shops.find((s) => s.shop_id === shop)?.name || `Shop ${shop}`;
  }

  /** @param {string} conv @returns {ConvState} */
  _conv(conv) {
    let c = this.convs.get(conv);
    if (!c) this.convs.set(conv, (c = { lastSeq: 0, readSeq: 0, peerRead: 0, last: null }));
    return c;
  }

  /** The open session of a conversation, if it is one of the agent's. @param {string} conv */
  sessionOf(conv) {
    for (const s of this.sessions.values()) if (s.conv === conv) return s;
    return undefined;
  }

  /** @param {Envelope} env */
  _onMessage(env) {
    this.history.add(env);
    const p = parseConv(env.conv);
    if (!p || p.kind !== "service") return;
    const cv = this._conv(env.conv);
    cv.lastSeq = Math.max(cv.lastSeq, env.seq);
    if (!cv.last || env.seq >= cv.last.seq) cv.last = env;
    if (env.from === this.uid) cv.readSeq = Math.max(cv.readSeq, env.seq);
    let s = this.sessionOf(env.conv);
    if (!s && env.session && env.agent === this.uid && this._serves(p.shop)) {
      // Assigned before the cs_assigned event got here (or it was missed).
      s = { session_id: env.session, shop_id: p.shop, customer: p.customer, agent: this.uid, conv: env.conv, created_at: env.ts };
      this._sSet(env.session, s);
      this._qDel(env.session);
    }
    const t = this.typing.get(env.conv);
    if (t) t.delete(env.from);
    if (s && env.from === p.customer) {
      const open = this.openSession();
      if (open && open.conv === env.conv && this.visible) {
        this.markOpenRead();
      } else {
        this.alerts.alert({
          title: this.names.label(p.customer),
          body: preview(env),
          tag: env.conv,
          onClick: () => {
            this.setShop(p.shop);
            if (s) this.setOpen(s.session_id);
          },
        });
      }
      this._maybeRefreshCustomer(p.shop, p.customer);
    }
    this.changed();
  }

  // ---------------------------------------------------------- loading

  /** @param {boolean} fresh signed in just now (not a reload) */
  async start(fresh) {
    if (fresh) this.availability = "online";
    this.setAvailability(this.availability).catch(() => {});
    try {
      const all = await this.api.shops();
      // Settings come only with the shops one serves (admins: all).
      this.shops = all.filter((s) => this.admin || s.welcome_message !== undefined);
    } catch (e) {
      if (e instanceof ImError && e.status === 401) {
        this.hooks.onUnauthorized();
        return;
      }
      this.notice = "Could not load the shops. Reload to try again.";
    }
    const saved = Number(localStorage.getItem(shopKey));
    this.shopId = this.shops.some((s) => s.shop_id === saved) ? saved : this.shops[0]?.shop_id || 0;
    this.loaded = true;
    this.changed();
    try {
      await this.client.connect();
    } catch (e) {
      if (e instanceof ImError && e.code === "unauthorized") this.hooks.onUnauthorized();
      return;
    }
    await this.reload();
  }

  stop() {
    for (const u of this._unsubs) u();
    this.client.close();
    this.alerts.stop();
    this.subs.clear();
  }

  /** The shops whose queue and sessions are kept current: all an agent serves; an admin's selected one. */
  _watched() {
    return this.admin ? this.shops.filter((s) => s.shop_id === this.shopId) : this.shops;
  }

  /** Reloads queues, sessions, read state (at start, after a reconnect, on shop change). */
  async reload() {
    const watched = this._watched();
    await Promise.all([this.refreshConvs(), ...watched.map((s) => this._loadShop(s.shop_id))]);
    const open = this.openSession();
    if (open) this.history.catchUp(open.conv);
    this.changed();
  }

  // Events change the queue and the sessions through these, which note
  // when: a list fetched before an event must not undo it.

  /** @param {number} id @param {QueueItem} item */
  _qSet(id, item) {
    this.queue.set(id, item);
    this._touched.set(`q${id}`, ++this._tick);
  }
  /** @param {number} id */
  _qDel(id) {
    this._touched.set(`q${id}`, ++this._tick);
    return this.queue.delete(id);
  }
  /** @param {number} id @param {SessionRow} row */
  _sSet(id, row) {
    this.sessions.set(id, row);
    this._touched.set(`s${id}`, ++this._tick);
  }
  /** @param {number} id */
  _sDel(id) {
    this._touched.set(`s${id}`, ++this._tick);
    return this.sessions.delete(id);
  }
  /** Whether an event changed key after tick t. @param {string} key @param {number} t */
  _since(key, t) {
    return (this._touched.get(key) || 0) > t;
  }

  /** @param {number} shop */
  async _loadShop(shop) {
    const t0 = this._tick;
    const [queued, open] = await Promise.all([
      this.api.sessions(shop, "queued").catch(() => null),
      this.api.sessions(shop, "open").catch(() => null),
    ]);
    if (queued) {
      for (const [id, q] of this.queue) {
        if (q.shop_id === shop && !queued.some((s) => s.session_id === id) && !this._since(`q${id}`, t0)) this.queue.delete(id);
      }
      for (const s of queued) {
        if (this._since(`q${s.session_id}`, t0)) continue;
        this.queue.set(s.session_id, {
          session_id: s.session_id,
          shop_id: s.shop_id,
          customer: s.customer,
          conv: serviceConv(s.shop_id, s.customer),
          created_at: s.created_at,
        });
      }
      this.names.want(queued.map((s) => s.customer));
    }
    if (open) {
      const mine = open.filter((s) => s.agent === this.uid);
      for (const [id, s] of this.sessions) {
        if (s.shop_id === shop && !mine.some((m) => m.session_id === id) && !this._since(`s${id}`, t0)) this.sessions.delete(id);
      }
      for (const s of mine) {
        if (this._since(`s${s.session_id}`, t0)) continue;
        this.sessions.set(s.session_id, { ...s, conv: serviceConv(s.shop_id, s.customer) });
        if (!this._since(`q${s.session_id}`, t0)) this.queue.delete(s.session_id);
      }
      this.names.want(mine.map((s) => s.customer));
      // An open session that is no longer listed stays open in name: if it
      // comes back to this agent (a re-queued session drained to it), it shows again.
    }
    this.loadCanned(shop);
    this.changed();
  }

  /** Read positions and last messages of the service conversations. */
  async refreshConvs() {
    let list;
    try {
      list = await this.api.conversations();
    } catch (e) {
      if (e instanceof ImError && e.status === 401) this.hooks.onUnauthorized();
      return;
    }
    for (const row of list) {
      if (row.kind !== "service") continue;
      const cv = this._conv(row.conv);
      cv.lastSeq = Math.max(cv.lastSeq, row.last_seq);
      cv.readSeq = Math.max(cv.readSeq, row.read_seq);
      const peer = /** @type {any} */ (row).peer_read_seq;
      if (typeof peer === "number") cv.peerRead = Math.max(cv.peerRead, peer);
      if (row.last_message && (!cv.last || row.last_message.seq >= cv.last.seq)) cv.last = row.last_message;
    }
    this.markOpenRead();
    this.changed();
  }

  /** @param {number} shop */
  async loadCanned(shop) {
    try {
      this.canned.set(shop, await this.api.canned(shop));
      this.changed();
    } catch {
      // none shown
    }
  }

  /** @param {number} shop */
  async loadAgents(shop) {
    try {
      const list = await this.api.agents(shop);
      this.agents.set(shop, list);
      for (const a of list) this.names.learn(a.uid, a.username);
      this.changed();
    } catch (e) {
      this.setNotice(e instanceof Error ? e.message : String(e));
    }
  }

  /** @param {number} shop @param {number} uid */
  async loadCustomer(shop, uid) {
    try {
      const c = await this.api.customer(shop, uid);
      this.customers.set(`${shop}:${uid}`, { ...c, loadedAt: Date.now() });
      if (c.username) this.names.learn(uid, c.username, c.name);
      this.names.want((c.sessions || []).map((s) => s.agent || 0));
      this.changed();
    } catch {
      // the panel shows what it has
    }
  }

  /** @param {number} shop @param {number} uid */
  _maybeRefreshCustomer(shop, uid) {
    const open = this.openSession();
    if (!open || open.customer !== uid || open.shop_id !== shop) return;
    const c = this.customers.get(`${shop}:${uid}`);
    if (!c || Date.now() - c.loadedAt > 15000) this.loadCustomer(shop, uid);
  }

  // ---------------------------------------------------------- reading

  /** The selected shop's queue, oldest first. */
  queueList() {
    return [...this.queue.values()].filter((q) => q.shop_id === this.shopId).sort((a, b) => a.created_at - b.created_at || a.session_id - b.session_id);
  }

  /** @param {number} shop */
  queueCount(shop) {
    let n = 0;
    for (const q of this.queue.values()) if (q.shop_id === shop) n++;
    return n;
  }

  /** @param {SessionRow} s */
  activity(s) {
    const cv = this.convs.get(s.conv);
    return Math.max(s.created_at || 0, cv && cv.last ? cv.last.ts : 0);
  }

  /** The agent's open sessions of the selected shop, newest activity first. */
  sessionList() {
    return [...this.sessions.values()]
      .filter((s) => s.shop_id === this.shopId)
      .sort((a, b) => this.activity(b) - this.activity(a) || b.session_id - a.session_id);
  }

  /** @param {SessionRow} s */
  unread(s) {
    const cv = this.convs.get(s.conv);
    if (!cv) return 0;
    if (s.session_id === this.openId && this.visible) return 0;
    return Math.max(0, cv.lastSeq - cv.readSeq);
  }

  /** Unread messages in the sessions of the other shops. @param {number} shop */
  unreadIn(shop) {
    let n = 0;
    for (const s of this.sessions.values()) if (s.shop_id === shop) n += this.unread(s);
    return n;
  }

  openSession() {
    return this.openId ? this.sessions.get(this.openId) : undefined;
  }

  /** @param {string} conv */
  typingNames(conv) {
    const m = this.typing.get(conv);
    if (!m) return [];
    const now = Date.now();
    const out = [];
    for (const [uid, until] of m) if (until > now) out.push(this.names.label(uid));
    return out;
  }

  // ---------------------------------------------------------- acting

  /** @param {number} shop */
  setShop(shop) {
    if (this.shopId === shop || !this._serves(shop)) return;
    this.shopId = shop;
    localStorage.setItem(shopKey, String(shop));
    const open = this.openSession();
    if (open && open.shop_id !== shop) this.openId = 0;
    if (this.admin) this.reload();
    else this.loadCanned(shop);
    this.changed();
  }

  /** @param {"online"|"away"} status */
  async setAvailability(status) {
    const before = this.availability;
    this.availability = status;
    localStorage.setItem(availabilityKey, status);
    this.changed();
    try {
      await this.api.setStatus(status);
    } catch (e) {
      this.availability = before;
      localStorage.setItem(availabilityKey, before);
      this.setNotice("Could not change your availability.");
      throw e;
    }
  }

  toggleAvailability() {
    this.setAvailability(this.availability === "online" ? "away" : "online").catch(() => {});
  }

  /** @param {number} id */
  setOpen(id) {
    if (this.openId === id) return;
    this.openId = id;
    this.notice = "";
    const s = this.openSession();
    if (s) {
      this.history.loadNewest(s.conv).then(() => this.markOpenRead());
      this.loadCustomer(s.shop_id, s.customer);
      this.markOpenRead();
    }
    this.changed();
  }

  /** @param {boolean} v */
  setVisible(v) {
    if (this.visible === v) return;
    this.visible = v;
    if (v) {
      this.markOpenRead();
      this.refreshConvs();
    }
    this.changed();
  }

  markOpenRead() {
    const s = this.openSession();
    if (!s || !this.visible) return;
    const cv = this._conv(s.conv);
    const newest = this.history.newest(s.conv);
    const seq = Math.max(cv.lastSeq, newest ? newest.seq : 0);
    if (seq > cv.readSeq) {
      cv.readSeq = seq;
      this.client.markRead(s.conv, seq).catch(() => {});
      this.changed();
    }
  }

  /** Takes a queued session and opens it. @param {number} id */
  async take(id) {
    const q = this.queue.get(id);
    try {
      await this.api.takeSession(id);
    } catch (e) {
      if (e instanceof ImError && e.code === "conflict") {
        this._qDel(id);
        this.setNotice("Someone else took that customer.");
        return;
      }
      this.setNotice(e instanceof Error ? e.message : String(e));
      return;
    }
    this._qDel(id);
    if (q && !this.sessions.has(id)) {
      this._sSet(id, { session_id: id, shop_id: q.shop_id, customer: q.customer, agent: this.uid, conv: q.conv, created_at: q.created_at });
    }
    this.setOpen(id);
    this.changed();
  }

  /** @param {number} id @param {number} to */
  async transfer(id, to) {
    try {
      await this.api.transferSession(id, to);
    } catch (e) {
      this.setNotice(e instanceof Error ? e.message : String(e));
      return false;
    }
    this._dropSession(id, `Session transferred to ${this.names.label(to)}.`);
    return true;
  }

  /** @param {number} id */
  async close(id) {
    try {
      await this.api.closeSession(id);
    } catch (e) {
      this.setNotice(e instanceof Error ? e.message : String(e));
      return;
    }
    this._dropSession(id, "");
  }

  /** @param {string} conv @param {string} s */
  sendText(conv, s) {
    this.client.send(conv, textMsg(s)).catch(() => {});
  }

  /** @param {string} conv @param {{title: string, description?: string, url?: string}} c */
  sendCard(conv, c) {
    /** @type {any} */
    const body = { title: c.title };
    if (c.description) body.description = c.description;
    if (c.url) body.url = c.url;
    this.client.send(conv, cardMsg(body)).catch(() => {});
  }

  /** @param {string} conv @param {File} f */
  async sendFile(conv, f) {
    this.notice = "";
    this.uploading++;
    this.changed();
    try {
      // Resolves once stored and echoed; a refusal lands in the catch below.
      await this.client.sendUpload(conv, f, f.name);
    } catch (e) {
      this.notice = e instanceof ImError && (e.code === "payload_too_large" || e.code === "too_large") ? "That file is too large." : `Upload failed: ${e instanceof Error ? e.message : e}`;
    } finally {
      this.uploading--;
      this.changed();
    }
  }

  /** @param {string} conv */
  typingNow(conv) {
    this.client.typing(conv);
  }
}
