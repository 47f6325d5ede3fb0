// @ts-check
// The state of the chat app in one place, fed by the SDK's events and REST
// answers. Components read it and call its methods; every change bumps a
// version and notifies the subscribers, which re-render.
import { Observable } from "./observable.js";
import { Client, parseConv, singleConv, roomConv, text as textMsg, ImError } from "../sdk/imclient.js";
import { Names } from "./names.js";

/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */
/** @typedef {import("../sdk/imclient.js").Token} Token */

/**
 * @typedef {object} ConvRow
 * @property {string} conv
 * @property {string} kind single|room|service|sys
 * @property {number} lastSeq
 * @property {number} readSeq
 * @property {number} unread
 * @property {Envelope|null} last
 * @property {number} activity ms, for ordering
 * @property {number} peerRead the other side's read position (single, service)
 * @property {number} [room]
 * @property {number} [peer] the other user (single)
 */

/**
 * @typedef {object} ConvMessages
 * @property {Map<number, Envelope>} bySeq
 * @property {boolean} loaded the newest page was fetched
 * @property {boolean} loading
 * @property {boolean} hasMore older messages exist
 */

export class ChatStore extends Observable {
  /** @param {Token} token @param {{onUnauthorized: () => void}} hooks */
  constructor(token, hooks) {
    super();
    this.me = token;
    this.uid = token.uid;
    this.hooks = hooks;
    this.client = new Client({ token, allRooms: true });
    this.api = this.client.api;
    /** @type {Map<number, number>} rooms this user just left, with when (see _justLeft) */
    this._left = new Map();
    /** @type {Map<string, ConvRow>} */
    this.convs = new Map();
    /** @type {Map<string, ConvMessages>} */
    this.messages = new Map();
    /** @type {Map<number, {room_id: number, name: string, owner: number, private: boolean}>} */
    this.rooms = new Map();
    /** @type {Map<number, any[]>} room → members */
    this.members = new Map();
    /** @type {Map<string, Map<number, number>>} conv → uid → until (ms) */
    this.typing = new Map();
    /** @type {Map<number, {online: boolean, status: string, last_seen: number}>} */
    this.presence = new Map();
    /** @type {Map<string, {cid: string, conv: string, message: any, since: number, failed?: string}>} */
    this.pending = new Map();
    this.names = new Names(this.api, () => this.changed());
    this.names.learn(this.uid, token.username);
    /** @type {Map<number, string>} shop id → name */
    this.shopNames = new Map();
    /** @type {string} the connection: connecting, online, reconnecting, offline */
    this.state = this.client.state;
    /** @type {string|null} */
    this.open = null;
    this.visible = document.visibilityState === "visible";
    this.notice = "";
    this._unsubs = [];
    this._wire();
  }

  _wire() {
    const c = this.client;
    const on = (/** @type {string} */ ev, /** @type {Function} */ fn) => this._unsubs.push(c.on(ev, fn));
    on("state", (/** @type {string} */ s) => {
      this.state = s;
      this.changed();
    });
    on("message", (/** @type {Envelope} */ env) => this._onMessage(env));
    on("send", (/** @type {any} */ ev) => this._onSend(ev));
    on("read", (/** @type {any} */ ev) => {
      const row = this.convs.get(ev.conv);
      if (!row) return;
      if (ev.uid === this.uid) {
        // Read in another tab or on another device.
        if (ev.seq > row.readSeq) {
          row.readSeq = ev.seq;
          row.unread = Math.max(0, row.lastSeq - row.readSeq);
          this.changed();
        }
      } else if (ev.seq > row.peerRead && row.kind !== "room") {
        row.peerRead = ev.seq;
        this.changed();
      }
    });
    on("typing", (/** @type {any} */ ev) => {
      if (ev.uid === this.uid || typeof ev.conv !== "string") return;
      let m = this.typing.get(ev.conv);
      if (!m) this.typing.set(ev.conv, (m = new Map()));
      m.set(ev.uid, Date.now() + 5000);
      setTimeout(() => this.changed(), 5050);
      this.changed();
    });
    on("presence", (/** @type {any} */ ev) => {
      this.presence.set(ev.uid, { online: !!ev.online, status: ev.status || "", last_seen: ev.last_seen || 0 });
      this.changed();
    });
    on("room_member", (/** @type {any} */ ev) => {
      if (ev.uid === this.uid && (ev.action === "left" || ev.action === "removed")) {
        this._dropRoom(ev.room);
      } else if (ev.uid === this.uid && ev.action === "joined" && !this.rooms.has(ev.room)) {
        // Added to a room (the SDK follows it): list it.
        this._learnRoom(ev.room);
      } else if (this.members.has(ev.room) || this.open === roomConv(ev.room)) {
        this.loadMembers(ev.room);
      }
    });
    on("unauthorized", () => this.hooks.onUnauthorized());
    on("error", (/** @type {ImError} */ e) => {
      this.notice = e.message;
      this.changed();
    });
  }

  async start() {
    await this.refresh();
    try {
      const rooms = await this.api.rooms();
      for (const r of rooms) this._addRoom(r, 0);
    } catch {
      // listed at the next refresh
    }
    this.changed();
    this.client.connect().catch((e) => {
      if (e instanceof ImError && e.code === "unauthorized") this.hooks.onUnauthorized();
    });
  }

  stop() {
    for (const u of this._unsubs) u();
    this.client.close();
    this.subs.clear();
  }

  /** Reloads the conversation list (unread counts, read positions): at start and when the tab comes back. */
  async refresh() {
    let list;
    try {
      list = await this.api.conversations();
    } catch (e) {
      if (e instanceof ImError && e.status === 401) this.hooks.onUnauthorized();
      return;
    }
    for (const c of list) {
      if (!this._mine(c.conv)) continue;
      const row = this._row(c.conv, c.kind);
      row.lastSeq = Math.max(row.lastSeq, c.last_seq);
      row.readSeq = Math.max(row.readSeq, c.read_seq);
      const peer = /** @type {any} */ (c).peer_read_seq;
      if (typeof peer === "number" && row.kind !== "room" && peer > row.peerRead) row.peerRead = peer;
      row.unread = this.open === c.conv && this.visible ? 0 : Math.max(0, row.lastSeq - row.readSeq);
      if (c.last_message && (!row.last || c.last_message.seq >= row.last.seq)) {
        row.last = c.last_message;
        row.activity = Math.max(row.activity, c.last_message.ts);
        this._notePeer(row, c.last_message);
      }
    }
    this._wantNames();
    this.changed();
    if (this.open) this.markOpenRead();
  }

  /**
   * Whether conv belongs in this list: agents see their shops' customer
   * conversations too, but those are the desk's (/desk), not the chat's.
   * @param {string} conv
   */
  _mine(conv) {
    const p = parseConv(conv);
    if (p && p.kind === "room" && this._justLeft(p.room)) return false;
    return !(p && p.kind === "service" && p.customer !== this.uid);
  }

  /**
   * Whether the user left the room in the last 30 s: a list fetched, or a
   * message sent, before the leave must not bring it back.
   * @param {number} room
   */
  _justLeft(room) {
    const t = this._left.get(room);
    return t !== undefined && Date.now() - t < 30000;
  }

  /** Looks up the names of the people in the list, and the shops' names. */
  _wantNames() {
    /** @type {number[]} */
    const uids = [];
    let shops = false;
    for (const row of this.convs.values()) {
      if (row.peer) uids.push(row.peer);
      if (row.last && row.last.from) uids.push(row.last.from);
      const p = row.kind === "service" ? parseConv(row.conv) : null;
      if (p && p.kind === "service") {
        if (!this.shopNames.has(p.shop)) shops = true;
        if (p.customer !== this.uid) uids.push(p.customer);
      }
    }
    this.names.want(uids);
    if (shops && !this._shopsAsked) {
      this._shopsAsked = true;
      this.api
        .shops()
        .then((list) => {
          for (const s of list) this.shopNames.set(s.shop_id, s.name);
          this.changed();
        })
        .catch(() => {
          this._shopsAsked = false;
        });
    }
  }

  /** A room the user was added to. @param {number} room */
  async _learnRoom(room) {
    this._left.delete(room); // joined again
    try {
      const r = await this.api.room(room);
      this._addRoom(r, Date.now());
      this.changed();
    } catch {
      // listed at the next refresh
    }
  }

  /** @param {string} conv @param {string} [kind] */
  _row(conv, kind) {
    let row = this.convs.get(conv);
    if (!row) {
      const p = parseConv(conv);
      row = {
        conv,
        kind: kind || (p ? p.kind : "single"),
        lastSeq: 0,
        readSeq: 0,
        unread: 0,
        last: null,
        activity: 0,
        peerRead: 0,
      };
      if (p && p.kind === "single") row.peer = p.a === this.uid ? p.b : p.a;
      if (p && p.kind === "room") row.room = p.room;
      this.convs.set(conv, row);
    }
    return row;
  }

  /** The other side read at least up to its own newest message. @param {ConvRow} row @param {Envelope} env */
  _notePeer(row, env) {
    if (env.from !== this.uid && env.from !== 0 && env.seq > row.peerRead && row.kind !== "room") row.peerRead = env.seq;
  }

  /** @param {any} r @param {number} activity */
  _addRoom(r, activity) {
    this.rooms.set(r.room_id, r);
    const row = this._row(roomConv(r.room_id), "room");
    row.activity = Math.max(row.activity, activity);
  }

  /** @param {number} room */
  _dropRoom(room) {
    this._left.set(room, Date.now());
    this.rooms.delete(room);
    this.members.delete(room);
    this.convs.delete(roomConv(room));
    this.client.unsubscribeRoom(room);
    if (this.open === roomConv(room)) location.hash = "";
    this.changed();
  }

  /** @param {Envelope} env */
  _onMessage(env) {
    if (!this._mine(env.conv)) return;
    const row = this._row(env.conv);
    row.lastSeq = Math.max(row.lastSeq, env.seq);
    if (!row.last || env.seq >= row.last.seq) row.last = env;
    row.activity = Math.max(row.activity, env.ts || Date.now(), Date.now());
    this._notePeer(row, env);
    // Presence is refused until a single chat has a message: ask again
    // (a no-op when already following).
    if (this.open === env.conv && row.peer) this.client.watchPresence(row.peer);
    if (env.from === this.uid) {
      // Sending moves the sender's own read position to the message.
      row.readSeq = Math.max(row.readSeq, env.seq);
      row.unread = Math.max(0, row.lastSeq - row.readSeq);
    } else if (this.open === env.conv && this.visible) {
      this.markOpenRead();
    } else if (env.seq > row.readSeq) {
      row.unread = row.lastSeq - row.readSeq;
    }
    const t = this.typing.get(env.conv);
    if (t) t.delete(env.from);
    const m = this.messages.get(env.conv);
    if (m) m.bySeq.set(env.seq, env);
    if (env.cid) this.pending.delete(env.cid);
    this.changed();
  }

  /** @param {any} ev */
  _onSend(ev) {
    if (ev.state === "pending") {
      this.pending.set(ev.cid, { cid: ev.cid, conv: ev.conv, message: ev.message, since: Date.now() });
      const row = this._row(ev.conv);
      row.activity = Date.now();
    } else if (ev.state === "failed") {
      const p = this.pending.get(ev.cid);
      if (p) p.failed = ev.error ? ev.error.message : "not sent";
    } else if (ev.state === "sent") {
      this.pending.delete(ev.cid);
    }
    this.changed();
  }

  // ---------------------------------------------------------- reading

  /** The conversations, newest activity first. */
  list() {
    return [...this.convs.values()].sort((a, b) => b.activity - a.activity || (a.conv < b.conv ? -1 : 1));
  }

  /** @param {ConvRow} row */
  title(row) {
    switch (row.kind) {
      case "sys":
        return "Announcements";
      case "room": {
        const r = row.room ? this.rooms.get(row.room) : undefined;
        return r ? r.name : `Room ${row.room}`;
      }
      case "service": {
        const p = parseConv(row.conv);
        if (!p || p.kind !== "service") return "Support";
        const shop = this.shopNames.get(p.shop) || `Shop ${p.shop}`;
        return p.customer === this.uid ? `${shop} support` : `${this.nameOf(p.customer)} · ${shop}`;
      }
      default:
        return row.peer ? this.nameOf(row.peer) : row.conv;
    }
  }

  /** @param {number} uid */
  nameOf(uid) {
    return this.names.label(uid);
  }

  /** @param {number} uid @param {string} name */
  learnName(uid, name) {
    this.names.learn(uid, name);
  }

  /** @param {string} conv */
  typingNames(conv) {
    const m = this.typing.get(conv);
    if (!m) return [];
    const now = Date.now();
    const out = [];
    for (const [uid, until] of m) if (until > now) out.push(this.nameOf(uid));
    return out;
  }

  /** The newest broadcast. */
  latestBroadcast() {
    const row = this.convs.get("sys");
    return row && row.last ? row.last : null;
  }

  // ---------------------------------------------------------- conversation

  /** @param {string|null} conv */
  setOpen(conv) {
    if (this.open === conv) return;
    const prev = this.open ? this.convs.get(this.open) : null;
    if (prev && prev.peer) this.client.unwatchPresence(prev.peer);
    this.open = conv;
    if (conv) {
      const row = this._row(conv);
      if (row.peer) this.client.watchPresence(row.peer);
      if (row.room) this.loadMembers(row.room);
      this.loadNewest(conv);
      this.markOpenRead();
    }
    this.changed();
  }

  /** @param {boolean} v */
  setVisible(v) {
    this.visible = v;
    if (v) {
      this.markOpenRead();
      this.refresh();
    }
  }

  /** @param {string} conv */
  _msgs(conv) {
    let m = this.messages.get(conv);
    if (!m) this.messages.set(conv, (m = { bySeq: new Map(), loaded: false, loading: false, hasMore: true }));
    return m;
  }

  /** Messages of conv, ascending, plus the pending sends. @param {string} conv */
  view(conv) {
    const m = this._msgs(conv);
    const msgs = [...m.bySeq.values()].sort((a, b) => a.seq - b.seq);
    const pend = [...this.pending.values()].filter((p) => p.conv === conv).sort((a, b) => a.since - b.since);
    return { msgs, pending: pend, hasMore: m.hasMore, loading: m.loading, loaded: m.loaded };
  }

  /** @param {string} conv */
  async loadNewest(conv) {
    const m = this._msgs(conv);
    if (m.loaded || m.loading) return;
    m.loading = true;
    this.changed();
    try {
      const page = await this.api.history(conv, { limit: 50 });
      for (const env of page) m.bySeq.set(env.seq, env);
      m.hasMore = page.length > 0 && page[0].seq > 1;
      m.loaded = true;
      const row = this._row(conv);
      for (const env of page) this._notePeer(row, env);
      if (page.length) {
        const last = page[page.length - 1];
        if (!row.last || last.seq > row.last.seq) row.last = last;
        row.lastSeq = Math.max(row.lastSeq, last.seq);
      }
      if (this.open === conv) this.markOpenRead();
    } catch {
      m.hasMore = true;
    } finally {
      m.loading = false;
      this.changed();
    }
  }

  /** Loads the page before the oldest shown. @param {string} conv @returns {Promise<boolean>} whether it added any */
  async loadOlder(conv) {
    const m = this._msgs(conv);
    if (m.loading || !m.hasMore || !m.loaded) return false;
    const oldest = Math.min(...m.bySeq.keys());
    if (!(oldest > 1)) {
      m.hasMore = false;
      return false;
    }
    m.loading = true;
    this.changed();
    try {
      const page = await this.api.history(conv, { beforeSeq: oldest, limit: 50 });
      for (const env of page) m.bySeq.set(env.seq, env);
      m.hasMore = page.length > 0 && page[0].seq > 1;
      return page.length > 0;
    } catch {
      return false;
    } finally {
      m.loading = false;
      this.changed();
    }
  }

  markOpenRead() {
    if (!this.open || !this.visible) return;
    const row = this.convs.get(this.open);
    if (!row) return;
    const seq = row.lastSeq;
    row.unread = 0;
    if (seq > row.readSeq) {
      row.readSeq = seq;
      this.client.markRead(row.conv, seq).catch(() => {
        // retried at the next message or focus
      });
    }
    this.changed();
  }

  // ---------------------------------------------------------- acting

  /** @param {string} conv @param {string} s */
  sendText(conv, s) {
    this.client.send(conv, textMsg(s)).catch(() => {});
  }

  /** @param {string} conv @param {File} f */
  async sendFile(conv, f) {
    this.notice = "";
    this.uploading = (this.uploading || 0) + 1;
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

  /** Finds a user by name and returns the single chat's conv. @param {string} username */
  async startChat(username) {
    const users = await this.api.users(username.trim());
    if (!users || !users.length) throw new ImError({ code: "not_found", message: `Nobody is called “${username.trim()}”.` });
    const u = users[0];
    if (u.uid === this.uid) throw new ImError({ code: "invalid", message: "That is you." });
    this.learnName(u.uid, u.username);
    const conv = singleConv(this.uid, u.uid);
    const row = this._row(conv, "single");
    if (!row.activity) row.activity = Date.now();
    this.changed();
    return conv;
  }

  /** @param {string} name @param {boolean} priv */
  async createRoom(name, priv) {
    const r = await this.client.createRoom(name, priv);
    this._left.delete(r.room_id);
    this._addRoom(r, Date.now());
    this.changed();
    return roomConv(r.room_id);
  }

  /** @param {any} r a search result */
  async joinRoom(r) {
    await this.client.joinRoom(r.room_id);
    this._left.delete(r.room_id);
    this._addRoom({ room_id: r.room_id, name: r.name, owner: r.owner, private: false }, Date.now());
    this.changed();
    return roomConv(r.room_id);
  }

  /** @param {number} room */
  async leaveRoom(room) {
    await this.client.leaveRoom(room);
    this._dropRoom(room);
  }

  /** @param {number} room */
  async loadMembers(room) {
    try {
      const list = await this.api.roomMembers(room);
      this.members.set(room, list);
      for (const mb of list) this.learnName(mb.uid, mb.username);
      this.changed();
    } catch {
      // shown as not loaded
    }
  }

  /** @param {number} room @param {string} username */
  async addMember(room, username) {
    const users = await this.api.users(username.trim());
    if (!users || !users.length) throw new ImError({ code: "not_found", message: `Nobody is called “${username.trim()}”.` });
    await this.api.addRoomMember(room, users[0].uid);
    await this.loadMembers(room);
  }

  /** @param {number} room @param {number} uid */
  async removeMember(room, uid) {
    await this.api.removeRoomMember(room, uid);
    await this.loadMembers(room);
  }

  /** Reloads the rooms (on focus: a room_member event may have been missed while offline). */
  async refreshRooms() {
    const now = Date.now();
    if (now - (this._roomsAt || 0) < 10000) return;
    this._roomsAt = now;
    try {
      const rooms = await this.api.rooms();
      for (const r of rooms) {
        if (!this.rooms.has(r.room_id)) {
          if (this._justLeft(r.room_id)) continue; // fetched before the leave
          this._addRoom(r, Date.now());
          this.client.subscribeRoom(r.room_id);
        } else {
          this.rooms.set(r.room_id, r);
        }
      }
      for (const id of [...this.rooms.keys()]) if (!rooms.some((r) => r.room_id === id)) this._dropRoom(id);
      this.changed();
    } catch {
      // next time
    }
  }
}
