// @ts-check
// The admin page's shared state: the API, a client for the connection
// state and live broadcasts, names of users.
import { Observable } from "./observable.js";
import { Client } from "../sdk/imclient.js";
import { Names } from "./names.js";

/** @typedef {import("../sdk/imclient.js").Token} Token */
/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */

/** Shared state of the admin page. */
export class AdminStore extends Observable {
  /** @param {Token} token @param {() => void} onUnauthorized */
  constructor(token, onUnauthorized) {
    super();
    this.me = token;
    this.client = new Client({ token });
    this.api = this.client.api;
    /** @type {string} the connection: connecting, online, reconnecting, offline */
    this.state = this.client.state;
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

