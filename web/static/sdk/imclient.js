// @ts-check
/**
 * imclient: the JavaScript SDK of imserver (an ES module, no build step).
 *
 * - `Api`: typed REST helpers for the contract (accounts, conversations,
 *   history, rooms, users, shops, uploads). Refusals throw `ImError`, whose
 *   `code` is the contract's code.
 * - `Client`: MQTT 5 over WebSocket at `/mqtt` with the access token as the
 *   password. It reconnects by itself with back-off, subscribes again,
 *   sends with a client id (`cid`) and retries until acknowledged, and hands
 *   over each conversation's messages exactly once, in seq order, filling
 *   every gap (reconnects, skipped seqs) from history.
 *
 * It mirrors the Go SDK (package `clients`); see docs/sdk-js.md.
 *
 * @module imclient
 */

import mqtt from "../vendor/mqtt@5.16.0/mqtt.esm.js";

/** The origin this module was loaded from: the imserver by default. */
const moduleOrigin = new URL(import.meta.url).origin;

/**
 * @typedef {{access_token: string, token_type?: string, expires_in?: number,
 *   uid: number, username: string, role: string}} Token
 * @typedef {{uid: number, username: string, role?: string}} Account
 * @typedef {{id: string, conv: string, seq: number, from: number, to?: number,
 *   room?: number, shop?: number, customer?: number, agent?: number,
 *   session?: number, type: string, body: any, cid?: string, ts: number,
 *   auto?: boolean}} Envelope
 * @typedef {{cid?: string, type: string, body: any}} Message
 * @typedef {{conv: string, kind: string, last_seq: number, read_seq: number,
 *   unread: number, last_message: Envelope|null}} Conversation
 * @typedef {{room_id: number, name: string, owner: number, private: boolean,
 *   members?: number}} Room
 * @typedef {{uid: number, username: string, role: string}} Member
 * @typedef {{url: string, name: string, size: number, content_type: string,
 *   width?: number, height?: number}} Upload
 * @typedef {{conv: string, read_seq: number, last_seq: number, unread: number}} ReadState
 * @typedef {{event: string, [k: string]: any}} Event
 * @typedef {{uid: number, username: string, name?: string}} UserName
 * @typedef {{uid: number, username: string, name?: string, role: string,
 *   disabled: boolean, created_at: number}} UserInfo
 * @typedef {{shop_id: number, name: string, welcome_message?: string,
 *   offline_message?: string, keyword_replies?: {keyword: string, reply: string}[],
 *   created_at?: number}} Shop
 * @typedef {{uid: number, username: string, online: boolean, status: string,
 *   open_sessions: number}} Agent
 * @typedef {{session_id: number, shop_id: number, customer: number,
 *   agent: number|null, status: "queued"|"open"|"closed", created_at: number}} Session
 * @typedef {{id: number, shortcut: string, text: string}} Canned
 * @typedef {{uid: number, username: string, name: string, first_contact: number,
 *   sessions: Session[], page: {url: string, title?: string, updated_at: number}|null}} Customer
 * @typedef {{event: "cs_queue", session: number, shop: number, position: number,
 *   eta_s: number|null}} QueueEvent  to the queued customer: its place in line (1 = next)
 * @typedef {{event: "cs_queued", session: number, shop: number, customer: number,
 *   conv: string, created_at: number}} QueuedEvent  to the shop's online agents
 * @typedef {{event: "cs_dequeued", session: number, shop: number,
 *   agent: number|null}} DequeuedEvent  to the shop's online agents
 * @typedef {{event: "cs_assigned"|"cs_transferred"|"cs_closed", session: number,
 *   shop: number, customer: number, agent: number, conv: string,
 *   agent_name?: string, customer_name?: string}} SessionEvent
 * @typedef {"connecting"|"online"|"reconnecting"|"offline"} State
 */

/** Message types of the contract. */
export const Types = Object.freeze({ text: "text", image: "image", file: "file", card: "card" });

/** Image content types that are sent as image messages and shown inline. */
export const imageTypes = Object.freeze(["image/png", "image/jpeg", "image/gif", "image/webp"]);

/**
 * A refusal from the server or a failure to reach it. `code` is the
 * contract's code (`invalid_request`, `unauthorized`, `forbidden`,
 * `not_found`, `conflict`, `payload_too_large`, `rate_limited`, `internal`
 * over REST; `forbidden`, `invalid`, `too_large`, `not_found`,
 * `rate_limited` for a refused publish), or `network` when the server could
 * not be reached, or `closed` when the client was closed.
 */
export class ImError extends Error {
  /**
   * @param {{status?: number, code: string, message: string, topic?: string, cid?: string}} e
   */
  constructor(e) {
    super(e.message || e.code);
    this.name = "ImError";
    /** HTTP status; 0 for MQTT refusals and network failures. */
    this.status = e.status || 0;
    /** The contract's code. */
    this.code = e.code;
    /** MQTT: the refused publish's topic. */
    this.topic = e.topic || "";
    /** MQTT: the refused publish's cid. */
    this.cid = e.cid || "";
  }
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A random hex string of n bytes. @param {number} n */
export function randomId(n = 12) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- messages

/** A text message. @param {string} s @returns {Message} */
export const text = (s) => ({ type: Types.text, body: s });

/**
 * An image message. @param {string} url @param {number} [width] @param {number} [height]
 * @returns {Message}
 */
export function image(url, width, height) {
  /** @type {any} */
  const body = { url };
  if (width && width > 0) body.width = Math.round(width);
  if (height && height > 0) body.height = Math.round(height);
  return { type: Types.image, body };
}

/** A file message. @param {string} url @param {string} name @param {number} [size] @returns {Message} */
export function file(url, name, size) {
  /** @type {any} */
  const body = { url, name };
  if (size !== undefined && size >= 0) body.size = size;
  return { type: Types.file, body };
}

/**
 * A card message. @param {{title: string, description?: string, url?: string, image?: string}} c
 * @returns {Message}
 */
export const card = (c) => ({ type: Types.card, body: { ...c } });

/** The message an upload answer becomes: an image for PNG/JPEG/GIF/WebP, else a file. @param {Upload} u */
export function fromUpload(u) {
  if (imageTypes.includes((u.content_type || "").split(";")[0].trim())) {
    return image(u.url, u.width, u.height);
  }
  return file(u.url, u.name, u.size);
}

/** The text of a text message, or "". @param {Envelope} env */
export const textOf = (env) => (env && env.type === Types.text && typeof env.body === "string" ? env.body : "");

/**
 * The hash that proves a shop's visitor id (`POST /auth/visitor`): lowercase
 * hex HMAC-SHA256 of externalId under the shop's identity secret. Compute
 * it on the shop's server, never in a page the visitor controls: the
 * secret must stay secret. Here for tests and tools.
 * @param {string} secret @param {string} externalId @returns {Promise<string>}
 */
export async function visitorHash(secret, externalId) {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(externalId)));
  return Array.from(sig, (x) => x.toString(16).padStart(2, "0")).join("");
}

// ---------------------------------------------------------------- conversations

/**
 * The single-chat conversation id of two users. @param {number} a @param {number} b
 */
export const singleConv = (a, b) => (a < b ? `u:${a}:${b}` : `u:${b}:${a}`);
/** @param {number} room */
export const roomConv = (room) => `r:${room}`;

/**
 * Parses a conversation id.
 * @param {string} conv
 * @returns {{kind: "single", a: number, b: number} | {kind: "room", room: number} |
 *   {kind: "service", shop: number, customer: number} | {kind: "sys"} | null}
 */
export function parseConv(conv) {
  if (conv === "sys") return { kind: "sys" };
  const p = String(conv).split(":");
  const n = p.slice(1).map(Number);
  if (n.some((x) => !Number.isSafeInteger(x) || x <= 0)) return null;
  if (p[0] === "u" && n.length === 2) return { kind: "single", a: n[0], b: n[1] };
  if (p[0] === "r" && n.length === 1) return { kind: "room", room: n[0] };
  if (p[0] === "s" && n.length === 2) return { kind: "service", shop: n[0], customer: n[1] };
  return null;
}

/**
 * The MQTT topic a user publishes to for a conversation.
 * @param {string} conv @param {number} me
 */
export function topicFor(conv, me) {
  const c = parseConv(conv);
  if (!c) throw new ImError({ code: "invalid", message: `not a conversation id: ${conv}` });
  switch (c.kind) {
    case "single":
      return `im/u/${c.a === me ? c.b : c.a}`;
    case "room":
      return `im/r/${c.room}`;
    case "service":
      return c.customer === me ? `im/s/${c.shop}` : `im/s/${c.shop}/u/${c.customer}`;
    default:
      return "im/sys/broadcast";
  }
}

// ---------------------------------------------------------------- REST

/** The REST API of PROTOCOL.md §2, §6–8. Make one per server; withToken for a user. */
export class Api {
  /**
   * @param {string} [server] the server's origin, e.g. "https://chat.example.com";
   *   default: the origin this module was loaded from.
   * @param {string} [token] an access token.
   */
  constructor(server = moduleOrigin, token = "") {
    this.server = server.replace(/\/+$/, "");
    this.token = token;
  }

  /** A copy that authenticates with token. @param {string} token */
  withToken(token) {
    return new Api(this.server, token);
  }

  /**
   * Sends a request under /api/v1 and returns the decoded answer.
   * @param {string} method @param {string} path @param {any} [body]
   * @param {{signal?: AbortSignal, form?: FormData}} [opts]
   * @returns {Promise<any>}
   */
  async request(method, path, body, opts = {}) {
    /** @type {Record<string,string>} */
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    /** @type {BodyInit|undefined} */
    let payload;
    if (opts.form) {
      payload = opts.form;
    } else if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(`${this.server}/api/v1${path}`, { method, headers, body: payload, signal: opts.signal });
    } catch (e) {
      if (e && /** @type {any} */ (e).name === "AbortError") throw e;
      throw new ImError({ code: "network", message: `cannot reach the server: ${e}` });
    }
    const textBody = await res.text().catch(() => "");
    let data = null;
    if (textBody) {
      try {
        data = JSON.parse(textBody);
      } catch {
        data = null;
      }
    }
    if (!res.ok) {
      const err = data && data.error;
      throw new ImError({
        status: res.status,
        code: (err && err.code) || codeOfStatus(res.status),
        message: (err && err.message) || textBody || res.statusText,
      });
    }
    return data;
  }

  // Accounts (§2, §6).
  /** @param {string} username @param {string} password @returns {Promise<Account>} */
  register(username, password) {
    return this.request("POST", "/auth/register", { username, password });
  }
  /** @param {string} username @param {string} password @returns {Promise<Token>} */
  login(username, password) {
    return this.request("POST", "/auth/login", { username, password });
  }
  /** A guest account (for shops' customer service). @param {string} [name] @returns {Promise<Token>} */
  guest(name) {
    return this.request("POST", "/auth/guest", name ? { name } : {});
  }
  /**
   * A verified shop visitor. @param {{shop_id: number, external_id: string, name?: string, hash: string}} v
   * @returns {Promise<Token>}
   */
  visitor(v) {
    return this.request("POST", "/auth/visitor", v);
  }
  /** Revokes this token everywhere. @returns {Promise<void>} */
  logout() {
    return this.request("POST", "/auth/logout");
  }
  /** @returns {Promise<Account>} */
  me() {
    return this.request("GET", "/me");
  }
  /** @param {"online"|"away"} status */
  setStatus(status) {
    return this.request("PUT", "/me/status", { status });
  }
  /** @param {string} oldPassword @param {string} newPassword */
  changePassword(oldPassword, newPassword) {
    return this.request("PUT", "/me/password", { old_password: oldPassword, new_password: newPassword });
  }
  /** Users with exactly this username (case-insensitive). @param {string} username @returns {Promise<Account[]>} */
  users(username) {
    return this.request("GET", `/users?username=${encodeURIComponent(username)}`);
  }
  /**
   * Names of users by uid (at most 100 a call): username, and the display
   * name of guests and visitors. Unknown uids are left out.
   * @param {number[]} uids @returns {Promise<UserName[]>}
   */
  usersByUid(uids) {
    const p = new URLSearchParams();
    for (const u of uids.slice(0, 100)) p.append("uid", String(u));
    return this.request("GET", `/users?${p}`);
  }
  /**
   * Admins: users whose username contains q.
   * @param {string} q @param {number} [limit] @returns {Promise<UserInfo[]>}
   */
  searchUsers(q, limit = 0) {
    const p = new URLSearchParams({ q });
    if (limit) p.set("limit", String(limit));
    return this.request("GET", `/users?${p}`);
  }
  /** Admins: the user can no longer sign in; its tokens stop working. @param {number} uid */
  disableUser(uid) {
    return this.request("POST", `/users/${uid}/disable`);
  }
  /** Admins. @param {number} uid */
  enableUser(uid) {
    return this.request("POST", `/users/${uid}/enable`);
  }

  // Conversations (§2, §3).
  /** @returns {Promise<Conversation[]>} newest activity first */
  conversations() {
    return this.request("GET", "/conversations");
  }
  /**
   * A page of history, ascending seq.
   * @param {string} conv
   * @param {{afterSeq?: number, beforeSeq?: number, limit?: number}} [q]
   *   afterSeq (0 = from the start), or beforeSeq, or neither for the newest.
   * @param {{signal?: AbortSignal}} [opts]
   * @returns {Promise<Envelope[]>}
   */
  history(conv, q = {}, opts = {}) {
    const p = new URLSearchParams();
    if (q.afterSeq !== undefined && q.afterSeq !== null) p.set("after_seq", String(q.afterSeq));
    if (q.beforeSeq) p.set("before_seq", String(q.beforeSeq));
    if (q.limit) p.set("limit", String(q.limit));
    const qs = p.toString();
    return this.request("GET", `/conversations/${encodeURIComponent(conv)}/messages${qs ? "?" + qs : ""}`, undefined, opts);
  }
  /** Stores a message over REST. @param {string} conv @param {Message} msg @returns {Promise<Envelope>} */
  post(conv, msg) {
    return this.request("POST", `/conversations/${encodeURIComponent(conv)}/messages`, msg);
  }
  /** @param {string} conv @param {number} seq @returns {Promise<ReadState>} */
  markRead(conv, seq) {
    return this.request("POST", `/conversations/${encodeURIComponent(conv)}/read`, { seq });
  }
  /** Admins. @param {string} textBody @returns {Promise<Envelope>} */
  broadcast(textBody) {
    return this.request("POST", "/broadcasts", { text: textBody });
  }

  // Rooms (§2, §6).
  /** @param {string} name @param {boolean} [priv] @returns {Promise<Room>} */
  createRoom(name, priv = false) {
    return this.request("POST", "/rooms", { name, private: priv });
  }
  /** The caller's rooms. @returns {Promise<Room[]>} */
  rooms() {
    return this.request("GET", "/rooms");
  }
  /** @param {number} id @returns {Promise<Room>} */
  room(id) {
    return this.request("GET", `/rooms/${id}`);
  }
  /** Public rooms whose name contains q, most members first. @param {string} q @param {number} [limit] @returns {Promise<Room[]>} */
  publicRooms(q = "", limit = 0) {
    const p = new URLSearchParams({ q });
    if (limit) p.set("limit", String(limit));
    return this.request("GET", `/rooms/public?${p}`);
  }
  /** @param {number} id */
  joinRoom(id) {
    return this.request("POST", `/rooms/${id}/join`);
  }
  /** @param {number} id */
  leaveRoom(id) {
    return this.request("POST", `/rooms/${id}/leave`);
  }
  /** @param {number} id @returns {Promise<Member[]>} */
  roomMembers(id) {
    return this.request("GET", `/rooms/${id}/members`);
  }
  /** Owners. @param {number} id @param {number} uid */
  addRoomMember(id, uid) {
    return this.request("POST", `/rooms/${id}/members`, { uid });
  }
  /** Owners. @param {number} id @param {number} uid */
  removeRoomMember(id, uid) {
    return this.request("DELETE", `/rooms/${id}/members/${uid}`);
  }

  // Shops and customer service (§2, §8).
  /** Every shop; settings only on those the caller serves (and for admins). @returns {Promise<Shop[]>} */
  shops() {
    return this.request("GET", "/shops");
  }
  /** @param {number} id @returns {Promise<Shop>} */
  shop(id) {
    return this.request("GET", `/shops/${id}`);
  }
  /** Admins. @param {{name: string, welcome_message?: string, offline_message?: string,
   *   keyword_replies?: {keyword: string, reply: string}[]}} settings @returns {Promise<Shop>} */
  createShop(settings) {
    return this.request("POST", "/shops", settings);
  }
  /** Admins. @param {number} id @param {any} settings */
  updateShop(id, settings) {
    return this.request("PATCH", `/shops/${id}`, settings);
  }
  /** Admins. @param {number} id @param {number} uid */
  addAgent(id, uid) {
    return this.request("POST", `/shops/${id}/agents`, { uid });
  }
  /** Admins. @param {number} id @param {number} uid */
  removeAgent(id, uid) {
    return this.request("DELETE", `/shops/${id}/agents/${uid}`);
  }
  /** @param {number} id @returns {Promise<Agent[]>} */
  agents(id) {
    return this.request("GET", `/shops/${id}/agents`);
  }
  /** @param {number} id @param {"queued"|"open"|"closed"} [status] @returns {Promise<Session[]>} */
  sessions(id, status) {
    return this.request("GET", `/shops/${id}/sessions${status ? "?status=" + status : ""}`);
  }
  /** @param {number} session @param {number} to */
  transferSession(session, to) {
    return this.request("POST", `/cs/sessions/${session}/transfer`, { to });
  }
  /** @param {number} session */
  closeSession(session) {
    return this.request("POST", `/cs/sessions/${session}/close`);
  }
  /** A queued session goes to the caller (409 conflict if no longer queued). @param {number} session */
  takeSession(session) {
    return this.request("POST", `/cs/sessions/${session}/take`);
  }
  /** Canned replies (agents of the shop, admins). @param {number} shop @returns {Promise<Canned[]>} */
  canned(shop) {
    return this.request("GET", `/shops/${shop}/canned`);
  }
  /** @param {number} shop @param {{shortcut: string, text: string}} c @returns {Promise<Canned>} */
  addCanned(shop, c) {
    return this.request("POST", `/shops/${shop}/canned`, c);
  }
  /** @param {number} shop @param {number} id @param {{shortcut?: string, text?: string}} c */
  updateCanned(shop, id, c) {
    return this.request("PATCH", `/shops/${shop}/canned/${id}`, c);
  }
  /** @param {number} shop @param {number} id */
  deleteCanned(shop, id) {
    return this.request("DELETE", `/shops/${shop}/canned/${id}`);
  }
  /** Admins: the secret that signs visitors' ids (see visitorHash). @param {number} shop @returns {Promise<{identity_secret: string}>} */
  identitySecret(shop) {
    return this.request("GET", `/shops/${shop}/identity-secret`);
  }
  /**
   * The customer tells the shop's agents which page it writes from.
   * @param {number} shop @param {{url: string, title?: string}} page
   */
  setContext(shop, page) {
    return this.request("PUT", `/shops/${shop}/context`, page);
  }
  /** Agents of the shop, admins: a customer's name, sessions and page. @param {number} shop @param {number} uid @returns {Promise<Customer>} */
  customer(shop, uid) {
    return this.request("GET", `/shops/${shop}/customers/${uid}`);
  }

  // Uploads (§7).
  /**
   * Uploads a file (multipart field "file").
   * @param {Blob} blob @param {string} [name] @returns {Promise<Upload>}
   */
  upload(blob, name) {
    const form = new FormData();
    form.append("file", blob, name || /** @type {any} */ (blob).name || "file");
    return this.request("POST", "/uploads", undefined, { form });
  }
}

/** @param {number} status */
function codeOfStatus(status) {
  return (
    {
      400: "invalid_request",
      401: "unauthorized",
      403: "forbidden",
      404: "not_found",
      409: "conflict",
      413: "payload_too_large",
      429: "rate_limited",
    }[status] || "internal"
  );
}

/** MQTT 5 PUBACK reason codes that are refusals, and their contract code. */
const refusalCodes = /** @type {Record<number,string>} */ ({
  0x87: "forbidden",
  0x99: "invalid",
  0x95: "too_large",
  0x97: "too_large",
  0x90: "not_found",
});

/** CONNACK reason codes after which reconnecting with the same token is pointless. */
const authRefusals = new Set([0x86, 0x87, 0x8c, 4, 5]);

// ---------------------------------------------------------------- Client

/**
 * @typedef {object} ClientOptions
 * @property {Token} token the answer of login, guest or visitor.
 * @property {string} [server] the server's origin; default: where this module came from.
 * @property {string} [broker] the WebSocket URL; default: ws(s)://{server host}/mqtt.
 * @property {string} [clientId] default "u{uid}-web-{random}".
 * @property {number[]} [rooms] rooms to follow besides those of allRooms.
 * @property {boolean} [allRooms] follow every room of GET /rooms (at each connect).
 * @property {boolean} [noBroadcast] leave im/sys/broadcast out.
 * @property {Record<string, number>} [positions] last seq seen per conversation (from positions()).
 * @property {number} [maxReconnectDelay] ms, default 10000.
 * @property {number} [keepalive] seconds, default 30.
 * @property {{debug?: Function, warn?: Function}} [log] diagnostics; default: none.
 * @property {any} [mqtt] the mqtt.js module (tests); default: the vendored one.
 */

/**
 * @typedef {object} PendingSend
 * @property {string} cid
 * @property {string} conv
 * @property {string} topic
 * @property {Message} msg
 * @property {string} payload
 * @property {number} since  when the send started (ms)
 * @property {number} sentGen  connection generation of the last publish (0: none)
 * @property {boolean} acked  the PUBACK arrived: stored, the echo is on its way
 * @property {any} timer
 * @property {(e: Envelope) => void} resolve
 * @property {(e: Error) => void} reject
 */

/** The events a Client emits, and what their listeners receive. */
export const Events = Object.freeze([
  "message", // Envelope, per conversation in seq order, each once
  "state", // State
  "send", // {cid, conv, state: "pending"|"stored"|"sent"|"failed", envelope?, error?}
  "error", // ImError: a refused publish that no send() waits for
  "read", // {conv, uid, seq}: the other side read; uid is the user's own for its other tabs and devices
  "typing", // {conv, uid}
  "presence", // {uid, online, status, last_seen}
  "room_member", // {room, uid, action}
  "resync", // {conv, after_seq}
  "cs_assigned", // SessionEvent: to the new agent and the customer
  "cs_transferred", // SessionEvent: to the previous agent and the customer
  "cs_closed", // SessionEvent: to the session's agent and the customer
  "cs_queue", // QueueEvent: to a queued customer, when its position changes
  "cs_queued", // QueuedEvent: to the shop's online agents
  "cs_dequeued", // DequeuedEvent: to the shop's online agents
  "unauthorized", // ImError: the token was refused; the client stopped
  "unknown", // {topic, payload}
]);

const pageSize = 200;

/** ms between two typing notices of a conversation (the server forwards one a second). */
const typingEvery = 1100;

/**
 * A connected chat client. Listen with on(), then connect().
 */
export class Client {
  /** @param {ClientOptions} opts */
  constructor(opts) {
    if (!opts || !opts.token || !opts.token.access_token || !opts.token.uid) {
      throw new ImError({ code: "invalid", message: "Client needs the token of a login" });
    }
    this.opts = { maxReconnectDelay: 10000, keepalive: 30, ...opts };
    this.me = opts.token;
    this.uid = opts.token.uid;
    this.api = new Api(opts.server || moduleOrigin, opts.token.access_token);
    /** @type {State} */
    this.state = "offline";
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    /** @type {Map<string, {last: number, ahead: Map<number, Envelope>, filling: Promise<void>|null, again: boolean}>} */
    this._convs = new Map();
    /** @type {Map<string, PendingSend>} */
    this._sends = new Map();
    /** @type {Set<number>} */
    this._rooms = new Set(opts.rooms || []);
    /** @type {Set<number>} */
    this._presence = new Set();
    /** @type {Map<string, number>} */
    this._typingAt = new Map();
    /** @type {Map<string, any>} conv → timer of a typing notice due */
    this._typingLater = new Map();
    /** @type {Map<string, number>} */
    this._marked = new Map();
    this._gen = 0; // connection generation: +1 at each connect
    this._attempt = 0;
    this._closed = false;
    this._started = false;
    this._reconnectTimer = null;
    /** @type {any} */
    this._mq = null;
    this._log = opts.log || {};
  }

  /**
   * Adds a listener; returns a function that removes it.
   * @param {string} event one of Events @param {Function} fn
   */
  on(event, fn) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    /** @type {Set<Function>} */ (this._listeners.get(event)).add(fn);
    return () => this._listeners.get(event)?.delete(fn);
  }

  /** @param {string} event @param {any} arg */
  _emit(event, arg) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(arg);
      } catch (e) {
        // A listener's bug must not stop delivery to the others.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  /** @param {State} s */
  _setState(s) {
    if (this.state === s) return;
    this.state = s;
    this._emit("state", s);
  }

  /** @param {string} what @param {...any} args */
  _debug(what, ...args) {
    if (this._log.debug) this._log.debug(`imclient: ${what}`, ...args);
  }

  /**
   * Connects: records where each conversation stands, opens MQTT, subscribes.
   * Resolves once subscribed the first time; rejects with ImError
   * "unauthorized" if the server refuses the token. Afterwards the client
   * reconnects by itself until close().
   * @returns {Promise<void>}
   */
  connect() {
    if (this._started) return this._firstConnect;
    this._started = true;
    this._setState("connecting");
    this._firstConnect = (async () => {
      await this._baseline();
      await new Promise((resolve, reject) => {
        this._firstResolve = resolve;
        this._firstReject = reject;
        this._open();
      });
    })();
    return this._firstConnect;
  }

  /** The starting point of every conversation: saved positions, else the current last seq. */
  async _baseline() {
    const convs = await this.api.conversations();
    for (const c of convs) this._convs.set(c.conv, { last: c.last_seq, ahead: new Map(), filling: null, again: false });
    for (const [conv, seq] of Object.entries(this.opts.positions || {})) {
      this._convs.set(conv, { last: seq, ahead: new Map(), filling: null, again: false });
    }
    if (this.opts.allRooms) {
      const rooms = await this.api.rooms();
      for (const r of rooms) this._rooms.add(r.room_id);
    }
    for (const r of this._rooms) await this._baselineConv(roomConv(r));
  }

  /** Starts conv at its newest seq unless it is followed already. @param {string} conv */
  async _baselineConv(conv) {
    if (this._convs.has(conv)) return;
    let last = 0;
    try {
      const page = await this.api.history(conv, { limit: 1 });
      if (page.length) last = page[page.length - 1].seq;
    } catch (e) {
      this._debug("baseline", conv, e);
    }
    if (!this._convs.has(conv)) this._convs.set(conv, { last, ahead: new Map(), filling: null, again: false });
  }

  _brokerURL() {
    if (this.opts.broker) return this.opts.broker;
    const u = new URL(this.api.server);
    return `${u.protocol === "https:" ? "wss:" : "ws:"}//${u.host}/mqtt`;
  }

  _open() {
    const m = this.opts.mqtt || mqtt;
    const mq = m.connect(this._brokerURL(), {
      protocolVersion: 5,
      clientId: this.opts.clientId || `u${this.uid}-web-${randomId(6)}`,
      username: this.me.username,
      password: this.me.access_token,
      clean: true,
      keepalive: this.opts.keepalive,
      reconnectPeriod: 0, // we reconnect ourselves, with back-off
      connectTimeout: 10000,
      resubscribe: false, // we subscribe ourselves after every connect
      queueQoSZero: false,
    });
    this._mq = mq;
    mq.on("connect", () => this._onConnect());
    mq.on("message", (/** @type {string} */ topic, /** @type {Uint8Array} */ payload) => this._onPublish(topic, payload));
    mq.on("error", (/** @type {any} */ err) => this._onError(err));
    mq.on("disconnect", (/** @type {any} */ pk) => {
      if (pk && authRefusals.has(pk.reasonCode)) this._refused(`disconnected by the server (${pk.reasonCode})`);
      if (pk && pk.reasonCode === 0x98) this._refused("the token was revoked");
    });
    mq.on("close", () => this._onClose());
  }

  /** @param {any} err */
  _onError(err) {
    this._debug("mqtt error", err);
    const code = err && typeof err.code === "number" ? err.code : -1;
    if (authRefusals.has(code)) this._refused(String(err && err.message));
  }

  /** The server refused the token: stop, and tell the app. @param {string} why */
  _refused(why) {
    if (this._closed) return;
    const e = new ImError({ status: 401, code: "unauthorized", message: `the server refused the token: ${why}` });
    this._stop(e);
    if (this._firstReject) {
      this._firstReject(e);
      this._firstReject = null;
      this._firstResolve = null;
    }
    this._emit("unauthorized", e);
  }

  _onClose() {
    if (this._closed) return;
    this._setState(this._gen === 0 ? "connecting" : "reconnecting");
    if (this._reconnectTimer) return;
    const base = Math.min(this.opts.maxReconnectDelay, 500 * 2 ** Math.min(this._attempt, 10));
    const delay = Math.round(base / 2 + (Math.random() * base) / 2);
    this._attempt++;
    this._debug("reconnect in", delay);
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (!this._closed && this._mq) this._mq.reconnect();
    }, delay);
  }

  /** Runs after every connect: subscribe, resend, catch up. */
  async _onConnect() {
    const gen = ++this._gen;
    const mq = this._mq;
    this._attempt = 0;
    const inbox = `im/u/${this.uid}`;
    /** @type {Record<string, {qos: 0|1}>} */
    const subs = { [inbox]: { qos: 1 } };
    if (!this.opts.noBroadcast) subs["im/sys/broadcast"] = { qos: 1 };
    for (const r of this._rooms) subs[`im/r/${r}`] = { qos: 1 };
    for (const u of this._presence) subs[`im/p/${u}`] = { qos: 1 };
    let granted;
    try {
      granted = await new Promise((resolve, reject) =>
        mq.subscribe(subs, (/** @type {any} */ err, /** @type {any} */ g) => (err ? reject(err) : resolve(g || []))),
      );
    } catch (e) {
      this._debug("subscribe failed", e);
      return; // the connection went away; the next connect tries again
    }
    if (gen !== this._gen || this._closed) return;
    for (const g of granted) {
      if (g.qos < 0x80) continue;
      if (g.topic === inbox) {
        this._refused("the inbox subscription was refused");
        return;
      }
      const room = /^im\/r\/(\d+)$/.exec(g.topic);
      if (room) this._rooms.delete(Number(room[1]));
      const p = /^im\/p\/(\d+)$/.exec(g.topic);
      if (p) this._presence.delete(Number(p[1]));
    }
    this._setState("online");
    if (this._firstResolve) {
      this._firstResolve();
      this._firstResolve = null;
      this._firstReject = null;
    }
    for (const p of this._sends.values()) if (!p.acked && p.sentGen !== gen) this._publish(p);
    await this._syncAll();
  }

  /** Fetches what every followed conversation got while away. */
  async _syncAll() {
    let convs;
    try {
      convs = await this.api.conversations();
    } catch (e) {
      this._debug("conversations after connect", e);
      return;
    }
    await Promise.all(
      convs
        .filter((c) => this._follows(c.conv))
        .map((c) => {
          const st = this._state(c.conv);
          return c.last_seq > st.last || st.ahead.size ? this._fill(c.conv) : null;
        }),
    );
  }

  /** @param {string} conv */
  _follows(conv) {
    const c = parseConv(conv);
    if (!c) return false;
    if (c.kind === "sys") return !this.opts.noBroadcast;
    if (c.kind === "room") return this._rooms.has(c.room);
    return true;
  }

  /** @param {string} conv */
  _state(conv) {
    let st = this._convs.get(conv);
    if (!st) {
      // Not there when the client started: it began since, so all of it is new.
      st = { last: 0, ahead: new Map(), filling: null, again: false };
      this._convs.set(conv, st);
    }
    return st;
  }

  /** The last seq handed over per conversation; pass back as options.positions. */
  positions() {
    /** @type {Record<string, number>} */
    const out = {};
    for (const [conv, st] of this._convs) out[conv] = st.last;
    return out;
  }

  /** @param {string} topic @param {Uint8Array} payload */
  _onPublish(topic, payload) {
    let obj;
    try {
      obj = JSON.parse(new TextDecoder().decode(payload));
    } catch {
      this._emit("unknown", { topic, payload });
      return;
    }
    if (!obj || typeof obj !== "object") {
      this._emit("unknown", { topic, payload });
      return;
    }
    if (!obj.event) {
      if (typeof obj.conv !== "string" || !(obj.seq > 0)) {
        this._emit("unknown", { topic, payload });
        return;
      }
      this._message(obj);
      return;
    }
    switch (obj.event) {
      case "error": {
        const e = new ImError({ code: obj.code, message: obj.message, topic: obj.topic, cid: obj.cid });
        const p = obj.cid ? this._sends.get(obj.cid) : undefined;
        if (p) this._fail(p, e);
        else this._emit("error", e);
        return;
      }
      case "room_member":
        if (obj.uid === this.uid && (obj.action === "left" || obj.action === "removed")) this._rooms.delete(obj.room);
        // Added to a room (the event comes on the inbox too): follow it.
        if (obj.uid === this.uid && obj.action === "joined" && this.opts.allRooms && !this._rooms.has(obj.room)) {
          this.subscribeRoom(obj.room);
        }
        this._emit("room_member", obj);
        return;
      case "resync":
        this._emit("resync", obj);
        if (typeof obj.conv === "string") this._fill(obj.conv);
        return;
      case "cs_assigned":
        // An agent given a session follows its conversation from the start.
        if (typeof obj.conv === "string") this._fill(obj.conv);
        this._emit(obj.event, obj);
        return;
      case "read":
      case "typing":
      case "presence":
      case "cs_transferred":
      case "cs_closed":
      case "cs_queue":
      case "cs_queued":
      case "cs_dequeued":
        this._emit(obj.event, obj);
        return;
      default:
        this._emit("unknown", { topic, payload });
    }
  }

  /** Hands env over in order, filling a gap before it if need be. @param {Envelope} env */
  _message(env) {
    const st = this._state(env.conv);
    if (env.seq <= st.last) return; // seen already
    if (!st.filling && env.seq === st.last + 1) {
      this._advance(st, env);
      this._flush(st);
      return;
    }
    st.ahead.set(env.seq, env);
    if (!st.filling) this._fill(env.conv);
  }

  /** @param {{last: number}} st @param {Envelope} env */
  _advance(st, env) {
    st.last = env.seq;
    if (env.from === this.uid && env.cid) {
      const p = this._sends.get(env.cid);
      if (p && p.conv === env.conv) this._done(p, env);
    }
    this._emit("message", env);
  }

  /** Hands over the held messages that are now next in line. @param {{last: number, ahead: Map<number, Envelope>}} st */
  _flush(st) {
    for (let env = st.ahead.get(st.last + 1); env; env = st.ahead.get(st.last + 1)) {
      st.ahead.delete(env.seq);
      this._advance(st, env);
    }
    for (const seq of st.ahead.keys()) if (seq <= st.last) st.ahead.delete(seq);
  }

  /** Hands over the held messages in seq order, leaving the gap. @param {{last: number, ahead: Map<number, Envelope>}} st */
  _skipGap(st) {
    const seqs = [...st.ahead.keys()].sort((a, b) => a - b);
    for (const seq of seqs) {
      const env = /** @type {Envelope} */ (st.ahead.get(seq));
      st.ahead.delete(seq);
      if (seq > st.last) this._advance(st, env);
    }
  }

  /**
   * Fetches conv's messages after the last handed over until the history
   * has no more, handing them over with those held meanwhile. Live messages
   * of conv wait while it runs.
   * @param {string} conv @returns {Promise<void>}
   */
  _fill(conv) {
    const st = this._state(conv);
    if (st.filling) {
      st.again = true;
      return st.filling;
    }
    st.filling = (async () => {
      let attempt = 0;
      let rechecked = false;
      try {
        for (;;) {
          if (this._closed) return;
          st.again = false;
          let page;
          try {
            page = await this.api.history(conv, { afterSeq: st.last, limit: pageSize });
          } catch (e) {
            const status = /** @type {any} */ (e).status || 0;
            if (status >= 400 && status < 500 && status !== 429) {
              this._debug("history refused; handing over held messages", conv, e);
              this._skipGap(st);
              return;
            }
            if (++attempt >= 3) return; // held until the next message, connect or sync
            await sleep(attempt * 300);
            continue;
          }
          for (const env of page) {
            if (env.seq === st.last + 1) this._advance(st, env);
            else if (env.seq > st.last) st.ahead.set(env.seq, env);
            this._flush(st);
          }
          if (page.length >= pageSize || st.again) continue;
          if (st.ahead.size === 0) return;
          if (!rechecked) {
            rechecked = true; // a live message may have overtaken the page: look once more
            continue;
          }
          this._debug("history ends before held messages", conv, st.last);
          this._skipGap(st);
          return;
        }
      } finally {
        st.filling = null;
      }
    })();
    return st.filling;
  }

  // ------------------------------------------------------------ sends

  /**
   * Sends msg to a conversation at QoS 1 with a client id, and resolves to
   * the stored envelope (its echo). Until acknowledged it stays pending:
   * it is published again with the same cid after a reconnect or a
   * server failure, and the server stores it once. Rejects with an
   * ImError when the server refuses it. The returned promise has the cid.
   * @param {string} conv @param {Message} msg
   * @returns {Promise<Envelope> & {cid: string}}
   */
  send(conv, msg) {
    const cid = msg.cid || `w${randomId(10)}`;
    /** @type {any} */
    let pend;
    const promise = /** @type {Promise<Envelope> & {cid: string}} */ (
      new Promise((resolve, reject) => {
        if (this._closed) {
          reject(new ImError({ code: "closed", message: "the client is closed" }));
          return;
        }
        const existing = this._sends.get(cid);
        if (existing) {
          reject(new ImError({ code: "invalid", message: `a send with cid ${cid} is already pending` }));
          return;
        }
        const topic = topicFor(conv, this.uid);
        const full = { cid, type: msg.type, body: msg.body };
        pend = { cid, conv, topic, msg: full, payload: JSON.stringify(full), since: Date.now(), sentGen: 0, acked: false, timer: null, resolve, reject };
      })
    );
    promise.cid = cid;
    const later = this._typingLater.get(conv);
    if (later) {
      clearTimeout(later);
      this._typingLater.delete(conv);
    }
    if (pend) {
      this._sends.set(cid, pend);
      this._emit("send", { cid, conv, state: "pending", message: pend.msg });
      const room = parseConv(conv);
      if (room && room.kind === "room" && !this._rooms.has(room.room)) {
        // The echo comes on the room topic: follow it first.
        this.subscribeRoom(room.room).finally(() => this._publish(pend));
      } else {
        this._publish(pend);
      }
    }
    return promise;
  }

  /** The sends still waiting for their acknowledgement. @param {string} [conv] */
  pending(conv) {
    return [...this._sends.values()]
      .filter((p) => !conv || p.conv === conv)
      .map((p) => ({ cid: p.cid, conv: p.conv, message: p.msg, since: p.since, stored: p.acked }));
  }

  /** @param {PendingSend} p */
  _publish(p) {
    if (!this._sends.has(p.cid) || !this._mq || this.state !== "online") return; // sent at the next connect
    const gen = this._gen;
    p.sentGen = gen;
    clearTimeout(p.timer);
    this._mq.publish(p.topic, p.payload, { qos: 1 }, (/** @type {any} */ err) => {
      if (!this._sends.has(p.cid)) return;
      if (!err) {
        p.acked = true;
        this._emit("send", { cid: p.cid, conv: p.conv, state: "stored" });
        // Stored: the echo is on its way. If it got lost, the history has it.
        p.timer = setTimeout(() => this._sends.has(p.cid) && this._fill(p.conv), 5000);
        return;
      }
      const code = typeof err.code === "number" ? refusalCodes[err.code] : undefined;
      if (code) {
        // The error event usually wins the race and carries the message.
        setTimeout(() => {
          if (this._sends.has(p.cid)) this._fail(p, new ImError({ code, message: err.message, topic: p.topic, cid: p.cid }));
        }, 500);
        return;
      }
      // Not stored (connection lost, server failure): try again.
      this._debug("publish not acknowledged; retrying", p.cid, err);
      p.sentGen = 0;
      if (gen === this._gen && this.state === "online") p.timer = setTimeout(() => this._publish(p), 2000);
    });
    // No PUBACK for a long time on a live connection: publish again (same cid).
    p.timer = setTimeout(() => {
      if (this._sends.has(p.cid) && !p.acked && gen === this._gen) this._publish(p);
    }, 15000);
  }

  /** @param {PendingSend} p @param {Envelope} env */
  _done(p, env) {
    clearTimeout(p.timer);
    this._sends.delete(p.cid);
    this._emit("send", { cid: p.cid, conv: p.conv, state: "sent", envelope: env });
    p.resolve(env);
  }

  /** @param {PendingSend} p @param {ImError} e */
  _fail(p, e) {
    clearTimeout(p.timer);
    this._sends.delete(p.cid);
    this._emit("send", { cid: p.cid, conv: p.conv, state: "failed", error: e });
    p.reject(e);
  }

  /** Sends to a user's single chat. @param {number} uid @param {Message} msg */
  sendUser(uid, msg) {
    return this.send(singleConv(this.uid, uid), msg);
  }
  /** Sends to a room. @param {number} room @param {Message} msg */
  sendRoom(room, msg) {
    return this.send(roomConv(room), msg);
  }
  /** A customer writes to a shop. @param {number} shop @param {Message} msg */
  sendShop(shop, msg) {
    return this.send(`s:${shop}:${this.uid}`, msg);
  }
  /** An agent answers a customer. @param {number} shop @param {number} customer @param {Message} msg */
  reply(shop, customer, msg) {
    return this.send(`s:${shop}:${customer}`, msg);
  }

  /**
   * Uploads a file and sends it at once: an image message for
   * PNG/JPEG/GIF/WebP, else a file message.
   * @param {string} conv @param {Blob} blob @param {string} [name]
   */
  async sendUpload(conv, blob, name) {
    const up = await this.api.upload(blob, name);
    return this.send(conv, fromUpload(up));
  }

  // ------------------------------------------------------------ read, typing, presence

  /**
   * Raises the user's read position in conv (never lowers it; repeated
   * calls with the same seq are sent once).
   * @param {string} conv @param {number} seq @returns {Promise<ReadState|null>}
   */
  async markRead(conv, seq) {
    if (!(seq > 0) || (this._marked.get(conv) || 0) >= seq) return null;
    const before = this._marked.get(conv) || 0;
    this._marked.set(conv, seq);
    try {
      return await this.api.markRead(conv, seq);
    } catch (e) {
      if ((this._marked.get(conv) || 0) === seq) this._marked.set(conv, before);
      throw e;
    }
  }

  /**
   * Tells the others in conv that the user is typing: QoS 0 to im/typing,
   * at most once a second per conversation. A call within the second is
   * sent at its end (once), so the last keystrokes are not lost; sending a
   * message to conv cancels that.
   * @param {string} conv @returns {boolean} whether it was sent now
   */
  typing(conv) {
    if (this.state !== "online") return false;
    const now = Date.now();
    const since = now - (this._typingAt.get(conv) || 0);
    if (since < typingEvery) {
      if (!this._typingLater.has(conv)) {
        this._typingLater.set(
          conv,
          setTimeout(() => {
            this._typingLater.delete(conv);
            this.typing(conv);
          }, typingEvery - since),
        );
      }
      return false;
    }
    this._typingAt.set(conv, now);
    this._mq.publish("im/typing", JSON.stringify({ conv }), { qos: 0 });
    return true;
  }

  /**
   * Follows a user's presence: "presence" events now (the current state)
   * and at every change. Resolves to false if the server refuses (no
   * conversation shared with that user).
   * @param {number} uid @returns {Promise<boolean>}
   */
  async watchPresence(uid) {
    if (this._presence.has(uid)) return true;
    this._presence.add(uid);
    if (this.state !== "online") return true; // subscribed at the next connect
    const ok = await this._subscribe(`im/p/${uid}`);
    if (!ok) this._presence.delete(uid);
    return ok;
  }

  /** @param {number} uid */
  unwatchPresence(uid) {
    if (!this._presence.delete(uid)) return;
    if (this.state === "online") this._mq.unsubscribe(`im/p/${uid}`);
  }

  /** @param {string} topic @returns {Promise<boolean>} */
  _subscribe(topic) {
    return new Promise((resolve) => {
      this._mq.subscribe({ [topic]: { qos: 1 } }, (/** @type {any} */ err, /** @type {any[]} */ granted) => {
        resolve(!err && !!granted && granted.every((g) => g.qos < 0x80));
      });
    });
  }

  // ------------------------------------------------------------ rooms

  /** The ids of the rooms followed. */
  rooms() {
    return [...this._rooms];
  }

  /**
   * Follows a room the user is a member of: its messages from now on
   * (earlier ones are history), now and after every reconnect.
   * @param {number} room @returns {Promise<boolean>} false if the server refused
   */
  async subscribeRoom(room) {
    const conv = roomConv(room);
    const known = this._rooms.has(room);
    if (!known) {
      await this._baselineConv(conv);
      this._rooms.add(room);
    }
    if (this.state !== "online") return true;
    const ok = await this._subscribe(`im/r/${room}`);
    if (!ok) {
      this._rooms.delete(room);
      return false;
    }
    this._fill(conv);
    return true;
  }

  /** @param {number} room */
  unsubscribeRoom(room) {
    if (!this._rooms.delete(room)) return;
    if (this.state === "online") this._mq.unsubscribe(`im/r/${room}`);
  }

  /** Creates a room and follows it. @param {string} name @param {boolean} [priv] */
  async createRoom(name, priv = false) {
    const r = await this.api.createRoom(name, priv);
    await this.subscribeRoom(r.room_id);
    return r;
  }

  /** Joins a public room and follows it. @param {number} room */
  async joinRoom(room) {
    const r = await this.api.joinRoom(room);
    await this.subscribeRoom(room);
    return r;
  }

  /** Leaves a room and stops following it. @param {number} room */
  async leaveRoom(room) {
    await this.api.leaveRoom(room);
    this.unsubscribeRoom(room);
  }

  // ------------------------------------------------------------ lifetime

  /** Stops: pending sends fail with "closed"; no events after this. */
  close() {
    this._stop(new ImError({ code: "closed", message: "the client is closed" }));
  }

  /** @param {ImError} why */
  _stop(why) {
    if (this._closed) return;
    this._closed = true;
    clearTimeout(this._reconnectTimer);
    for (const t of this._typingLater.values()) clearTimeout(t);
    this._typingLater.clear();
    for (const p of [...this._sends.values()]) this._fail(p, why);
    if (this._mq) this._mq.end(true);
    this._setState("offline");
  }
}
