// @ts-check
// Names of users: envelopes, events and sessions carry uids only. Lookups
// are batched (GET /users?uid=…, up to 100 a request) and remembered in
// localStorage, which every page of this origin shares.

/** @typedef {{username: string, name?: string}} Known */

const storageKey = "imserver.names";
const maxKept = 1000;

export class Names {
  /**
   * @param {import("../sdk/imclient.js").Api|null} api null: never look up (guests may not)
   * @param {() => void} changed called when names arrive
   */
  constructor(api, changed) {
    this.api = api;
    this.changed = changed;
    /** @type {Map<number, Known>} */
    this.known = load();
    /** @type {Set<number>} */
    this.wanted = new Set();
    /** @type {Set<number>} asked once already */
    this.asked = new Set();
    this.timer = 0;
  }

  /** @param {number} uid @returns {Known|undefined} */
  get(uid) {
    return this.known.get(uid);
  }

  /**
   * The name to show: a guest's or visitor's display name, else the
   * username; unknown uids are looked up and show a placeholder meanwhile.
   * @param {number} uid @param {string} [fallback]
   */
  label(uid, fallback) {
    if (!uid) return "System";
    const k = this.known.get(uid);
    if (k) return k.name || k.username;
    this.want([uid]);
    return fallback || `User ${uid}`;
  }

  /** The username, when it differs from the label (guests: guest-…). @param {number} uid */
  username(uid) {
    return this.known.get(uid)?.username || "";
  }

  /**
   * Remembers a name seen elsewhere (a login, an event's agent_name or
   * customer_name). username may be "" when only the display name is known.
   * @param {number} uid @param {string} username @param {string} [name]
   */
  learn(uid, username, name) {
    if (!uid || (!username && !name)) return;
    const old = this.known.get(uid);
    const k = { username: username || old?.username || "", name: name || old?.name || undefined };
    if (old && old.username === k.username && old.name === k.name) return;
    this.known.delete(uid);
    this.known.set(uid, k);
    this.save();
    this.changed();
  }

  /** Looks up the uids not known yet (batched, each at most once). @param {Iterable<number>} uids */
  want(uids) {
    if (!this.api) return;
    for (const u of uids) if (u > 0 && !this.known.has(u) && !this.asked.has(u)) this.wanted.add(u);
    if (!this.wanted.size || this.timer) return;
    this.timer = setTimeout(() => this.flush(), 30);
  }

  async flush() {
    this.timer = 0;
    const api = this.api;
    if (!api) return;
    const uids = [...this.wanted].slice(0, 100);
    for (const u of uids) {
      this.wanted.delete(u);
      this.asked.add(u);
    }
    if (this.wanted.size) this.timer = setTimeout(() => this.flush(), 30);
    try {
      const list = await api.usersByUid(uids);
      let any = false;
      for (const u of list || []) {
        if (!u || !u.uid || !u.username) continue;
        this.known.set(u.uid, { username: u.username, name: u.name || undefined });
        any = true;
      }
      if (any) {
        this.save();
        this.changed();
      }
    } catch {
      // Asked again after a reload; placeholders meanwhile.
      for (const u of uids) this.asked.delete(u);
    }
  }

  save() {
    try {
      const entries = [...this.known].slice(-maxKept).map(([uid, k]) => [uid, k.name ? [k.username, k.name] : k.username]);
      localStorage.setItem(storageKey, JSON.stringify(Object.fromEntries(entries)));
    } catch {
      // storage full or disabled: names are a nicety
    }
  }
}

/** @returns {Map<number, Known>} */
function load() {
  /** @type {Map<number, Known>} */
  const out = new Map();
  try {
    const o = JSON.parse(localStorage.getItem(storageKey) || "{}");
    for (const [k, v] of Object.entries(o)) {
      const uid = Number(k);
      if (!(uid > 0)) continue;
      if (typeof v === "string") out.set(uid, { username: v });
      else if (Array.isArray(v) && typeof v[0] === "string" && (v[0] || typeof v[1] === "string")) out.set(uid, { username: v[0], name: typeof v[1] === "string" ? v[1] : undefined });
    }
  } catch {
    // a fresh start
  }
  return out;
}
