// @ts-check
// Getting an agent's attention: a short chime (synthesised with Web Audio,
// so there is no file to fetch), a desktop notification while the tab is
// hidden, and a count in the tab's title until it is looked at again.

export class Alerts {
  /** @param {string} title the page's normal title */
  constructor(title) {
    this.title = title;
    this.count = 0;
    /** @type {AudioContext|null} */
    this.audio = null;
    this.muted = localStorage.getItem("imserver.desk.muted") === "1";
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.clear();
    };
    document.addEventListener("visibilitychange", this.onVisible);
    // Browsers let a page make sound only after the user interacted with it.
    this.onGesture = () => this.unlock();
    window.addEventListener("pointerdown", this.onGesture, true);
    window.addEventListener("keydown", this.onGesture, true);
    document.title = title;
  }

  stop() {
    document.removeEventListener("visibilitychange", this.onVisible);
    window.removeEventListener("pointerdown", this.onGesture, true);
    window.removeEventListener("keydown", this.onGesture, true);
    if (this.audio) this.audio.close().catch(() => {});
    this.audio = null;
    document.title = this.title;
  }

  /** Prepares sound; call from a user gesture. */
  unlock() {
    if (this.audio) {
      if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
      return;
    }
    const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Ctx) return;
    try {
      this.audio = new Ctx();
    } catch {
      this.audio = null;
    }
  }

  /** Whether the page may ask for notification permission now. */
  canAsk() {
    return typeof Notification !== "undefined" && Notification.permission === "default";
  }

  /** Asks for notification permission; call from a user gesture. */
  async ask() {
    this.unlock();
    if (!this.canAsk()) return;
    try {
      await Notification.requestPermission();
    } catch {
      // refused or unsupported
    }
  }

  /** @param {boolean} m */
  setMuted(m) {
    this.muted = m;
    localStorage.setItem("imserver.desk.muted", m ? "1" : "0");
  }

  /**
   * Something new: chime (unless muted), and while the tab is hidden a
   * notification and the title count.
   * @param {{title: string, body?: string, tag?: string, onClick?: () => void, quiet?: boolean}} what
   */
  alert(what) {
    const hidden = document.visibilityState === "hidden";
    if (!what.quiet || hidden) this.chime();
    if (!hidden) return;
    this.count++;
    document.title = `(${this.count}) ${this.title}`;
    if (typeof Notification === "undefined" || Notification.permission !== "granted") return;
    try {
      const n = new Notification(what.title, { body: (what.body || "").slice(0, 200), tag: what.tag, icon: "/app/icon.svg" });
      n.onclick = () => {
        window.focus();
        if (what.onClick) what.onClick();
        n.close();
      };
    } catch {
      // some browsers only allow notifications from a service worker
    }
  }

  clear() {
    this.count = 0;
    document.title = this.title;
  }

  /** A two-note chime, about 0.4 s. */
  chime() {
    const ctx = this.audio;
    if (this.muted || !ctx || ctx.state !== "running") return;
    const t = ctx.currentTime;
    for (const [i, f] of [880, 1320].entries()) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = "sine";
      osc.frequency.value = f;
      const start = t + i * 0.12;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(0.18, start + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.3);
      osc.connect(gain).connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.32);
    }
  }
}
