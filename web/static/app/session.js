// @ts-check
// The signed-in session of a page, kept in localStorage so that a reload
// stays signed in. Each app (/, /desk, /admin) passes its own key.
import { Api, ImError } from "../sdk/imclient.js";

/** @typedef {import("../sdk/imclient.js").Token} Token */

export class Session {
  /** @param {string} key the localStorage key, e.g. "imserver.chat" */
  constructor(key) {
    this.key = key;
    this.api = new Api();
  }

  /** The stored token, or null. @returns {Token|null} */
  load() {
    try {
      const t = JSON.parse(localStorage.getItem(this.key) || "null");
      return t && t.access_token && t.uid ? t : null;
    } catch {
      return null;
    }
  }

  /** @param {Token} token */
  save(token) {
    localStorage.setItem(this.key, JSON.stringify(token));
  }

  clear() {
    localStorage.removeItem(this.key);
  }

  /**
   * Follows sign-ins and sign-outs of the page's other tabs: calls set with
   * the stored token when it is no longer current. Returns the function
   * that stops following (an effect's cleanup).
   * @param {Token|null} current @param {(t: Token|null) => void} set
   */
  follow(current, set) {
    const onStorage = (/** @type {StorageEvent} */ e) => {
      if (e.key !== this.key) return;
      const t = this.load();
      if ((t && t.access_token) !== (current && current.access_token)) set(t);
    };
    window.addEventListener("storage", onStorage);
    return () => window.removeEventListener("storage", onStorage);
  }

  /**
   * Checks a stored token with GET /me. Returns the token (role refreshed),
   * or null if the server refuses it. A server that cannot be reached keeps
   * the token: the client will connect when it is back.
   * @param {Token} token @returns {Promise<Token|null>}
   */
  async verify(token) {
    try {
      const me = await this.api.withToken(token.access_token).me();
      return { ...token, username: me.username, role: me.role || token.role };
    } catch (e) {
      if (e instanceof ImError && e.status === 401) return null;
      return token;
    }
  }

  /** @param {string} username @param {string} password @returns {Promise<Token>} */
  async login(username, password) {
    const t = await this.api.login(username, password);
    this.save(t);
    return t;
  }

  /** Registers, then signs in. @param {string} username @param {string} password */
  async register(username, password) {
    await this.api.register(username, password);
    return this.login(username, password);
  }

  /** Revokes the token on the server (best effort) and forgets it. @param {Token} token */
  async logout(token) {
    this.clear();
    try {
      await this.api.withToken(token.access_token).logout();
    } catch {
      // Signed out here either way; the token expires by itself.
    }
  }
}

/** A person-readable sentence for an error. @param {any} e */
export function describeError(e) {
  if (!(e instanceof ImError)) return "Something went wrong. Please try again.";
  switch (e.code) {
    case "unauthorized":
      return "Wrong username or password.";
    case "conflict":
      return "That username is taken.";
    case "rate_limited":
      return "Too many attempts. Wait a moment and try again.";
    case "network":
      return "Cannot reach the server. Check your connection.";
    case "invalid_request":
    case "invalid":
      return e.message || "That was not accepted.";
    case "forbidden":
      return "You are not allowed to do that.";
    case "not_found":
      return e.message || "Not found.";
    case "payload_too_large":
    case "too_large":
      return "That is too large.";
  }
  return e.message || "Something went wrong.";
}
