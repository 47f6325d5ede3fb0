// @ts-check
// What every page's store shares: subscribers told of its changes (once
// per microtask, however many changes it makes), and the hook that
// re-renders a component on them.
import { useEffect, useReducer } from "./lib.js";

export class Observable {
  constructor() {
    /** bumped at every change */
    this.version = 0;
    /** @type {Set<() => void>} */
    this.subs = new Set();
    this._scheduled = false;
  }

  /** @param {() => void} fn @returns {() => void} unsubscribes */
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
}

/** Re-renders the caller whenever the store changes. @param {Observable} store */
export function useStore(store) {
  const [, bump] = useReducer((/** @type {number} */ n) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(0)), [store]);
}
