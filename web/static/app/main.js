// @ts-check
// The chat app's entry point: sign-in, then the chat on the SDK.
import { html, render, useState, useEffect } from "./lib.js";
import { Session } from "./session.js";
import { AuthForm } from "./ui.js";
import { ChatStore } from "./store.js";
import { ChatApp } from "./chat.js";

const session = new Session("imserver.chat");

/** @typedef {import("../sdk/imclient.js").Token} Token */

function App() {
  const [token, setToken] = useState(/** @type {Token|null} */ (session.load()));
  const [store, setStore] = useState(/** @type {ChatStore|null} */ (null));

  useEffect(() => {
    if (!token) return;
    let s = /** @type {ChatStore|null} */ (null);
    let stopped = false;
    (async () => {
      const t = await session.verify(token);
      if (stopped) return;
      if (!t) {
        session.clear();
        setToken(null);
        return;
      }
      session.save(t);
      s = new ChatStore(t, {
        onUnauthorized: () => {
          session.clear();
          setToken(null);
        },
      });
      setStore(s);
      s.start();
    })();
    return () => {
      stopped = true;
      if (s) s.stop();
      setStore(null);
    };
  }, [token]);

  // Another tab signed in or out.
  useEffect(() => session.follow(token, setToken), [token]);

  if (!token) {
    return html`<${AuthForm}
      title="imserver chat"
      subtitle="Sign in to your conversations, or create an account."
      onLogin=${async (/** @type {string} */ u, /** @type {string} */ p) => setToken(await session.login(u, p))}
      onRegister=${async (/** @type {string} */ u, /** @type {string} */ p) => setToken(await session.register(u, p))} />`;
  }
  if (!store) return html`<div class="splash" aria-busy="true"><span class="brand-mark"></span></div>`;
  const logout = async () => {
    const t = token;
    setToken(null);
    history.replaceState(null, "", location.pathname);
    await session.logout(t);
  };
  return html`<${ChatApp} store=${store} onLogout=${logout} />`;
}

render(html`<${App} />`, /** @type {HTMLElement} */ (document.getElementById("root")));
