// @ts-check
// The admin page's shared state: the API, a client for the connection
// state and live broadcasts, names of users.
import { useEffect, useReducer } from "./lib.js";
import { Client } from "../sdk/imclient.js";
import { Names } from "./names.js";

/** @typedef {import("../sdk/imclient.js").Token} Token */
/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */

/** Shared state of the admin page. */
export class AdminStore {
  /** @param {Token} token @param {() => void} onUnauthorized */
  constructor(token, onUnauthorized) {
    this.me = token;
    this.client = new Client({ token });
    this.api = this.client.api;
    /** @type {string} the connection: connecting, online, reconnecting, offline */
    this.state = this.client.state;
    this.version = 0;
    /** @type {Set<() => void>} */
    this.subs = new Set();
    this.names = new Names(this.api, () => this.changed());
    /** @type {Map<number, Envelope>} */
    this.broadcasts = new Map();
    this.broadcastsLoaded = false;
    this.moreBroadcasts = false;
    this.client.on("state", (/** @type {string} */ s) => {
      this.state = s;
      this.changed();
    });
    this.client.on("message", (/** @type {Envelope} */ env) => {
      if (env.conv !== "sys") return;
      this.broadcasts.set(env.seq, env);
      this.changed();
    });
    this.client.on("unauthorized", onUnauthorized);
  }

  /** @param {() => void} fn */
  subscribe(fn) {
    this.subs.add(fn);
    return () => this.subs.delete(fn);
  }

  changed() {
    this.version++;
    if (this._scheduled) return;
    this._scheduled = true;
    queueMicrotask(() => {
      this._scheduled = false;
      for (const fn of [...this.subs]) fn();
    });
  }

  start() {
    this.client.connect().catch(() => {});
  }

  stop() {
    this.client.close();
    this.subs.clear();
  }

  /** Loads the newest broadcasts, or the page before the oldest shown. @param {boolean} older */
  async loadBroadcasts(older) {
    const oldest = this.broadcasts.size ? Math.min(...this.broadcasts.keys()) : 0;
    if (older && !(oldest > 1)) return;
    const page = await this.api.history("sys", older ? { beforeSeq: oldest, limit: 50 } : { limit: 50 });
    for (const env of page) this.broadcasts.set(env.seq, env);
    if (!older || page.length) this.moreBroadcasts = page.length > 0 && page[0].seq > 1;
    this.broadcastsLoaded = true;
    this.changed();
  }
}

/** Re-renders the caller whenever the store changes. @param {AdminStore} store */
export function useStore(store) {
  const [, bump] = useReducer((/** @type {number} */ n) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(0)), [store]);
}
