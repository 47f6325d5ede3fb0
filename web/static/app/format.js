// @ts-check
// Small formatting helpers shared by the pages. Nothing here builds HTML.

/** Only http(s) URLs are ever used as links or image sources. @param {any} u */
export function safeURL(u) {
  if (typeof u !== "string" || u.length > 2048) return null;
  try {
    const url = new URL(u, location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

/** Whether an image URL may be shown inline (the page's CSP allows its own origin only). @param {string} u */
export function sameOrigin(u) {
  try {
    return new URL(u, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

/** @param {number} ts ms */
export function clock(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A short time for the conversation list. @param {number} ts ms */
export function shortTime(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return clock(ts);
  const diff = (now.getTime() - d.getTime()) / 86400000;
  if (diff < 6) return d.toLocaleDateString([], { weekday: "short" });
  return d.toLocaleDateString([], { month: "short", day: "numeric" });
}

/** A day heading. @param {number} ts ms */
export function dayLabel(ts) {
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return "Today";
  const y = new Date(now.getTime() - 86400000);
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" });
}

/** "last seen 5 min ago". @param {number} ms */
export function ago(ms) {
  if (!ms) return "offline";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return "last seen just now";
  if (s < 3600) return `last seen ${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `last seen ${Math.floor(s / 3600)} h ago`;
  return `last seen ${new Date(ms).toLocaleDateString()}`;
}

/** @param {number} n bytes */
export function bytes(n) {
  if (!(n >= 0)) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The one-line preview of a message. @param {any} env */
export function preview(env) {
  if (!env) return "";
  switch (env.type) {
    case "text":
      return typeof env.body === "string" ? env.body : "";
    case "image":
      return "Photo";
    case "file":
      return `File: ${(env.body && env.body.name) || "file"}`;
    case "card":
      return (env.body && env.body.title) || "Card";
  }
  return "Message";
}

/** A stable colour index for an avatar. @param {string|number} key */
export function hue(key) {
  let h = 0;
  for (const ch of String(key)) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return h % 360;
}

/** Initials for an avatar. @param {string} name */
export function initials(name) {
  const parts = String(name || "?").replace(/[_.-]+/g, " ").trim().split(/\s+/);
  return ((parts[0] || "?")[0] + (parts[1] ? parts[1][0] : "")).toUpperCase();
}

/** How long since ts, for waiting times: "<1 min", "4 min", "1 h 5 min". @param {number} ts ms */
export function waited(ts) {
  const s = Math.max(0, (Date.now() - ts) / 1000);
  if (s < 60) return "<1 min";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const h = Math.floor(s / 3600);
  if (h >= 48) return `${Math.floor(h / 24)} days`;
  return `${h} h ${Math.floor((s % 3600) / 60)} min`;
}

/** An estimated wait in seconds, as people say it. @param {number|null|undefined} s */
export function eta(s) {
  if (s === null || s === undefined || !(s >= 0)) return "";
  if (s < 60) return "less than a minute";
  const m = Math.round(s / 60);
  if (m < 60) return `about ${m} min`;
  return `about ${Math.round(m / 60)} h`;
}
