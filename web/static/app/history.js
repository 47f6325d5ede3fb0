// @ts-check
// The messages a page shows per conversation: the newest page, older pages
// as the user scrolls up, live messages from the SDK, and the sends still
// waiting for their acknowledgement. Shared by the chat, the desk and the
// widget; each page's store owns one and forwards the SDK's events to it.

/** @typedef {import("../sdk/imclient.js").Envelope} Envelope */

/**
 * @typedef {object} ConvMessages
 * @property {Map<number, Envelope>} bySeq
 * @property {boolean} loaded the newest page was fetched
 * @property {boolean} loading
 * @property {boolean} hasMore older messages exist
 */

/** @typedef {{cid: string, conv: string, message: any, since: number, failed?: string}} PendingSend */

const pageSize = 50;

export class History {
  /**
   * @param {import("../sdk/imclient.js").Api} api
   * @param {() => void} changed
   */
  constructor(api, changed) {
    this.api = api;
    this.changed = changed;
    /** @type {Map<string, ConvMessages>} */
    this.convs = new Map();
    /** @type {Map<string, PendingSend>} */
    this.pending = new Map();
  }

  /** @param {string} conv */
  get(conv) {
    let m = this.convs.get(conv);
    if (!m) this.convs.set(conv, (m = { bySeq: new Map(), loaded: false, loading: false, hasMore: true }));
    return m;
  }

  /** A live message (kept if the conversation is shown or was). @param {Envelope} env */
  add(env) {
    const m = this.convs.get(env.conv);
    if (m) m.bySeq.set(env.seq, env);
    if (env.cid) this.pending.delete(env.cid);
  }

  /** The SDK's "send" event. @param {any} ev */
  onSend(ev) {
    if (ev.state === "pending") {
      const old = this.pending.get(ev.cid);
      this.pending.set(ev.cid, { cid: ev.cid, conv: ev.conv, message: ev.message, since: old ? old.since : Date.now() });
    } else if (ev.state === "failed") {
      const p = this.pending.get(ev.cid);
      if (p) p.failed = ev.error ? ev.error.message : "not sent";
    } else if (ev.state === "sent") {
      this.pending.delete(ev.cid);
    }
  }

  /** Messages of conv, ascending, and its pending sends. @param {string} conv */
  view(conv) {
    const m = this.get(conv);
    const msgs = [...m.bySeq.values()].sort((a, b) => a.seq - b.seq);
    const shown = new Set(msgs.map((e) => e.cid).filter(Boolean));
    const pend = [...this.pending.values()].filter((p) => p.conv === conv && !shown.has(p.cid)).sort((a, b) => a.since - b.since);
    return { msgs, pending: pend, hasMore: m.hasMore && m.loaded, loading: m.loading, loaded: m.loaded };
  }

  /** The newest stored message shown of conv. @param {string} conv */
  newest(conv) {
    const m = this.convs.get(conv);
    if (!m || !m.bySeq.size) return null;
    return /** @type {Envelope} */ (m.bySeq.get(Math.max(...m.bySeq.keys())));
  }

  /** Fetches the newest page once. @param {string} conv @returns {Promise<Envelope[]>} */
  async loadNewest(conv) {
    const m = this.get(conv);
    if (m.loaded || m.loading) return [];
    m.loading = true;
    this.changed();
    try {
      const page = await this.api.history(conv, { limit: pageSize });
      for (const env of page) m.bySeq.set(env.seq, env);
      m.hasMore = page.length > 0 && page[0].seq > 1;
      m.loaded = true;
      return page;
    } catch {
      m.hasMore = true;
      return [];
    } finally {
      m.loading = false;
      this.changed();
    }
  }

  /** Loads the page before the oldest shown. @param {string} conv @returns {Promise<boolean>} whether it added any */
  async loadOlder(conv) {
    const m = this.get(conv);
    if (m.loading || !m.hasMore || !m.loaded) return false;
    const oldest = m.bySeq.size ? Math.min(...m.bySeq.keys()) : 0;
    if (!(oldest > 1)) {
      m.hasMore = false;
      return false;
    }
    m.loading = true;
    this.changed();
    try {
      const page = await this.api.history(conv, { beforeSeq: oldest, limit: pageSize });
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

  /** Fetches what conv got after the newest shown (a catch-up the SDK did not hand over). @param {string} conv */
  async catchUp(conv) {
    const m = this.convs.get(conv);
    if (!m || !m.loaded) return;
    let after = m.bySeq.size ? Math.max(...m.bySeq.keys()) : 0;
    for (;;) {
      let page;
      try {
        page = await this.api.history(conv, { afterSeq: after, limit: 200 });
      } catch {
        return;
      }
      for (const env of page) m.bySeq.set(env.seq, env);
      if (page.length) this.changed();
      if (page.length < 200) return;
      after = page[page.length - 1].seq;
    }
  }
}
