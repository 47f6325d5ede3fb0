// @ts-check
// The admin page's Shops tab: create shops, a live overview of every
// shop's queue and open sessions, and for the selected shop its settings,
// agents, canned replies and the widget's embed line.
import { html, useState, useEffect, useRef } from "./lib.js";
import { describeError } from "./session.js";
import { Avatar } from "./ui.js";
import { waited } from "./format.js";
import { useStore } from "./observable.js";

/** @typedef {import("./admin-store.js").AdminStore} AdminStore */
/** @typedef {import("../sdk/imclient.js").Shop} Shop */
/** @typedef {import("../sdk/imclient.js").Session} CSSession */
/** @typedef {import("../sdk/imclient.js").Agent} Agent */

/** How often the overview is reloaded while shown (ms). */
const pollEvery = 5000;

/** @param {{store: AdminStore}} props */
export function ShopsTab({ store }) {
  useStore(store);
  const [shops, setShops] = useState(/** @type {Shop[]|null} */ (null));
  const [selected, setSelected] = useState(0);
  const [overview, setOverview] = useState(/** @type {Map<number, {queued: CSSession[], open: CSSession[], agents: Agent[]}>} */ (new Map()));
  const [error, setError] = useState("");
  const shopsRef = useRef(/** @type {Shop[]} */ ([]));

  const loadShops = async () => {
    try {
      const list = await store.api.shops();
      shopsRef.current = list;
      setShops(list);
      return list;
    } catch (e) {
      setError(describeError(e));
      return [];
    }
  };

  const loadOverview = async () => {
    const list = shopsRef.current.slice(0, 50);
    const entries = await Promise.all(
      list.map(async (s) => {
        const [queued, open, agents] = await Promise.all([
          store.api.sessions(s.shop_id, "queued").catch(() => []),
          store.api.sessions(s.shop_id, "open").catch(() => []),
          store.api.agents(s.shop_id).catch(() => []),
        ]);
        for (const a of agents) store.names.learn(a.uid, a.username);
        store.names.want([...queued, ...open].map((x) => x.customer));
        return /** @type {[number, {queued: CSSession[], open: CSSession[], agents: Agent[]}]} */ ([s.shop_id, { queued, open, agents }]);
      }),
    );
    setOverview(new Map(entries));
  };

  useEffect(() => {
    let stop = false;
    /** @type {any} */
    let timer = 0;
    const tick = async () => {
      if (document.visibilityState === "visible") await loadOverview();
      if (!stop) timer = setTimeout(tick, pollEvery);
    };
    loadShops().then((list) => {
      if (stop) return;
      if (list.length) setSelected((cur) => cur || list[0].shop_id);
      tick();
    });
    return () => {
      stop = true;
      clearTimeout(timer);
    };
  }, [store]);

  const shop = (shops || []).find((s) => s.shop_id === selected);
  return html`
    <div class="shops-layout">
      <div class="shops-side">
        <${CreateShop} store=${store} onCreated=${async (/** @type {Shop} */ s) => {
          await loadShops();
          setSelected(s.shop_id);
          loadOverview();
        }} />
        <section class="card">
          <h2>Shops</h2>
          ${error && html`<p class="form-error" role="alert">${error}</p>`}
          <ul class="rows shop-list">
            ${(shops || []).map((s) => {
              const o = overview.get(s.shop_id);
              const online = o ? o.agents.filter((a) => a.online && a.status !== "away").length : 0;
              return html`<li key=${s.shop_id} class=${`shop-row ${s.shop_id === selected ? "active" : ""}`}>
                <button class="shop-item" data-testid="shop-item" data-shop=${s.shop_id} onClick=${() => setSelected(s.shop_id)}>
                  <${Avatar} name=${s.name} id=${"shop" + s.shop_id} size="small" kind="room" />
                  <span class="row-main"><strong>${s.name}</strong><small class="muted">#${s.shop_id}</small></span>
                  ${o &&
                  html`<span class="stats">
                    <span class=${`stat ${o.queued.length ? "warn" : ""}`} title="Waiting">${o.queued.length} waiting</span>
                    <span class="stat" title="Open sessions">${o.open.length} open</span>
                    <span class=${`stat ${online ? "ok" : ""}`} title="Agents available">${online}/${o.agents.length} agents</span>
                  </span>`}
                </button>
              </li>`;
            })}
            ${shops && shops.length === 0 && html`<li class="muted">No shop yet. Create one above.</li>`}
          </ul>
        </section>
      </div>
      <div class="shops-main">
        ${shop
          ? html`<${ShopEditor} key=${shop.shop_id} store=${store} shop=${shop} live=${overview.get(shop.shop_id)}
              onSaved=${(/** @type {Shop} */ s) => setShops((shops || []).map((x) => (x.shop_id === s.shop_id ? s : x)))}
              onAgents=${loadOverview} />`
          : html`<section class="card muted">Select a shop to edit it.</section>`}
      </div>
    </div>
  `;
}

/** @param {{store: AdminStore, onCreated: (s: Shop) => void}} props */
function CreateShop({ store, onCreated }) {
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    if (!name.trim()) return;
    setBusy(true);
    setError("");
    try {
      const s = await store.api.createShop({ name: name.trim() });
      setName("");
      onCreated(s);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return html`
    <section class="card">
      <h2>New shop</h2>
      <form class="inline-form" onSubmit=${submit}>
        <input data-testid="shop-create-name" placeholder="Shop name" maxlength="64" value=${name}
          onInput=${(/** @type {any} */ e) => setName(e.target.value)} aria-label="Shop name" />
        <button class="btn primary" type="submit" data-testid="shop-create-submit" disabled=${busy || !name.trim()}>Create</button>
      </form>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
    </section>
  `;
}

/**
 * @param {{store: AdminStore, shop: Shop, live: {queued: CSSession[], open: CSSession[], agents: Agent[]}|undefined,
 *   onSaved: (s: Shop) => void, onAgents: () => void}} props
 */
function ShopEditor({ store, shop, live, onSaved, onAgents }) {
  return html`
    <div class="editor">
      <${Settings} store=${store} shop=${shop} onSaved=${onSaved} />
      <${Live} store=${store} live=${live} />
      <${Agents} store=${store} shop=${shop} live=${live} onChange=${onAgents} />
      <${CannedReplies} store=${store} shop=${shop} />
      <${Embed} store=${store} shop=${shop} />
    </div>
  `;
}

/** @param {{store: AdminStore, shop: Shop, onSaved: (s: Shop) => void}} props */
function Settings({ store, shop, onSaved }) {
  const [name, setName] = useState(shop.name);
  const [welcome, setWelcome] = useState(shop.welcome_message || "");
  const [offline, setOffline] = useState(shop.offline_message || "");
  const [keywords, setKeywords] = useState((shop.keyword_replies || []).map((k) => ({ ...k })));
  const [status, setStatus] = useState("");
  const [error, setError] = useState("");
  const save = async (/** @type {Event} */ e) => {
    e.preventDefault();
    setError("");
    setStatus("");
    try {
      const s = await store.api.updateShop(shop.shop_id, {
        name: name.trim() || shop.name,
        welcome_message: welcome,
        offline_message: offline,
        keyword_replies: keywords.filter((k) => k.keyword.trim() && k.reply.trim()).map((k) => ({ keyword: k.keyword.trim(), reply: k.reply })),
      });
      onSaved(s);
      setStatus("Saved.");
    } catch (err) {
      setError(describeError(err));
    }
  };
  const setKw = (/** @type {number} */ i, /** @type {"keyword"|"reply"} */ f, /** @type {string} */ v) =>
    setKeywords(keywords.map((k, j) => (j === i ? { ...k, [f]: v } : k)));
  return html`
    <section class="card">
      <h2>${shop.name} <span class="muted small">#${shop.shop_id}</span></h2>
      <form class="stack" onSubmit=${save}>
        <label class="field"><span>Name</span>
          <input value=${name} maxlength="64" onInput=${(/** @type {any} */ e) => setName(e.target.value)} /></label>
        <label class="field"><span>Welcome message <small class="muted">(sent when a customer starts a conversation)</small></span>
          <textarea data-testid="shop-welcome" rows="2" maxlength="4000" value=${welcome} onInput=${(/** @type {any} */ e) => setWelcome(e.target.value)}></textarea></label>
        <label class="field"><span>Offline message <small class="muted">(sent once when no agent is available)</small></span>
          <textarea data-testid="shop-offline" rows="2" maxlength="4000" value=${offline} onInput=${(/** @type {any} */ e) => setOffline(e.target.value)}></textarea></label>
        <div class="field"><span>Keyword replies <small class="muted">(a message containing the keyword gets the reply)</small></span>
          <ul class="kw-list">
            ${keywords.map(
              (k, i) => html`<li key=${i} data-testid="keyword-item">
                <input placeholder="keyword" maxlength="64" value=${k.keyword} onInput=${(/** @type {any} */ e) => setKw(i, "keyword", e.target.value)} aria-label="Keyword" />
                <input placeholder="reply" maxlength="4000" value=${k.reply} onInput=${(/** @type {any} */ e) => setKw(i, "reply", e.target.value)} aria-label="Reply" />
                <button class="icon-btn" type="button" title="Remove" aria-label="Remove" onClick=${() => setKeywords(keywords.filter((_, j) => j !== i))}>✕</button>
              </li>`,
            )}
          </ul>
          <div><button class="btn small" type="button" data-testid="keyword-add" onClick=${() => setKeywords([...keywords, { keyword: "", reply: "" }])}>Add a keyword reply</button></div>
        </div>
        ${error && html`<p class="form-error" role="alert">${error}</p>`}
        <div class="row"><button class="btn primary" type="submit" data-testid="shop-save">Save</button>
          ${status && html`<span class="ok-text" role="status">${status}</span>`}</div>
      </form>
    </section>
  `;
}

/** The shop's queue and open sessions right now. @param {{store: AdminStore, live: {queued: CSSession[], open: CSSession[], agents: Agent[]}|undefined}} props */
function Live({ store, live }) {
  if (!live) return null;
  return html`
    <section class="card">
      <h2>Right now</h2>
      <div class="live-cols">
        <div>
          <h3>Waiting (${live.queued.length})</h3>
          <ul class="rows compact">
            ${live.queued.map((s) => html`<li key=${s.session_id}>#${s.session_id} · ${store.names.label(s.customer)} <span class="muted small">waiting ${waited(s.created_at)}</span></li>`)}
            ${live.queued.length === 0 && html`<li class="muted small">Nobody.</li>`}
          </ul>
        </div>
        <div>
          <h3>Open sessions (${live.open.length})</h3>
          <ul class="rows compact">
            ${live.open.map((s) => html`<li key=${s.session_id}>#${s.session_id} · ${store.names.label(s.customer)} <span class="muted small">with ${s.agent ? store.names.label(s.agent) : "nobody"}</span></li>`)}
            ${live.open.length === 0 && html`<li class="muted small">None.</li>`}
          </ul>
        </div>
      </div>
    </section>
  `;
}

/** @param {{store: AdminStore, shop: Shop, live: {agents: Agent[]}|undefined, onChange: () => void}} props */
function Agents({ store, shop, live, onChange }) {
  const [name, setName] = useState("");
  const [error, setError] = useState("");
  const [agents, setAgents] = useState(/** @type {Agent[]|null} */ (null));
  const load = async () => {
    try {
      setAgents(await store.api.agents(shop.shop_id));
    } catch (e) {
      setError(describeError(e));
    }
  };
  useEffect(() => {
    load();
  }, [shop.shop_id]);
  useEffect(() => {
    if (live) setAgents(live.agents);
  }, [live]);
  const add = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const u = name.trim();
    if (!u) return;
    setError("");
    try {
      const found = await store.api.users(u);
      if (!found || !found.length) {
        setError(`Nobody is called “${u}”.`);
        return;
      }
      await store.api.addAgent(shop.shop_id, found[0].uid);
      setName("");
      await load();
      onChange();
    } catch (err) {
      setError(describeError(err));
    }
  };
  const remove = async (/** @type {Agent} */ a) => {
    setError("");
    try {
      await store.api.removeAgent(shop.shop_id, a.uid);
      await load();
      onChange();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <section class="card">
      <h2>Agents</h2>
      <ul class="rows">
        ${(agents || []).map(
          (a) => html`<li key=${a.uid} data-testid="agent-item" data-uid=${a.uid}>
            <${Avatar} name=${a.username} id=${a.uid} size="small" />
            <span class="row-main"><strong>${a.username}</strong>
              <small class="muted">${!a.online ? "offline" : a.status === "away" ? "away" : "online"} · ${a.open_sessions} open session${a.open_sessions === 1 ? "" : "s"}</small></span>
            <i class=${`dot ${!a.online ? "off" : a.status === "away" ? "away" : "on"}`} aria-hidden="true"></i>
            <button class="link danger" data-testid="agent-remove" onClick=${() => remove(a)}>Remove</button>
          </li>`,
        )}
        ${agents && agents.length === 0 && html`<li class="muted small">No agent yet: customers wait in the queue.</li>`}
      </ul>
      <form class="inline-form" onSubmit=${add}>
        <input data-testid="agent-add-username" placeholder="Add an agent by username" autocapitalize="none" spellcheck="false"
          value=${name} onInput=${(/** @type {any} */ e) => setName(e.target.value)} aria-label="Username of the new agent" />
        <button class="btn" type="submit" data-testid="agent-add-submit" disabled=${!name.trim()}>Add</button>
      </form>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
    </section>
  `;
}

/** @param {{store: AdminStore, shop: Shop}} props */
function CannedReplies({ store, shop }) {
  const [list, setList] = useState(/** @type {import("../sdk/imclient.js").Canned[]|null} */ (null));
  const [shortcut, setShortcut] = useState("");
  const [textValue, setText] = useState("");
  const [editing, setEditing] = useState(0);
  const [error, setError] = useState("");
  const load = async () => {
    try {
      setList(await store.api.canned(shop.shop_id));
    } catch (e) {
      setError(describeError(e));
    }
  };
  useEffect(() => {
    load();
  }, [shop.shop_id]);
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault();
    const c = { shortcut: shortcut.trim().replace(/^\//, ""), text: textValue.trim() };
    if (!c.shortcut || !c.text) return;
    setError("");
    try {
      if (editing) await store.api.updateCanned(shop.shop_id, editing, c);
      else await store.api.addCanned(shop.shop_id, c);
      setShortcut("");
      setText("");
      setEditing(0);
      await load();
    } catch (err) {
      setError(describeError(err));
    }
  };
  const remove = async (/** @type {number} */ id) => {
    setError("");
    try {
      await store.api.deleteCanned(shop.shop_id, id);
      await load();
    } catch (err) {
      setError(describeError(err));
    }
  };
  return html`
    <section class="card">
      <h2>Canned replies</h2>
      <p class="muted small">Agents type <code>/</code> in the desk's composer to pick one.</p>
      <ul class="rows">
        ${(list || []).map(
          (c) => html`<li key=${c.id} data-testid="canned-row" data-id=${c.id}>
            <span class="row-main"><strong>/${c.shortcut}</strong><small class="canned-row-text">${c.text}</small></span>
            <button class="link" onClick=${() => { setEditing(c.id); setShortcut(c.shortcut); setText(c.text); }}>Edit</button>
            <button class="link danger" onClick=${() => remove(c.id)}>Delete</button>
          </li>`,
        )}
        ${list && list.length === 0 && html`<li class="muted small">None yet.</li>`}
      </ul>
      <form class="stack" onSubmit=${submit}>
        <div class="inline-form">
          <input data-testid="canned-shortcut" placeholder="shortcut, e.g. hello" maxlength="32" value=${shortcut}
            onInput=${(/** @type {any} */ e) => setShortcut(e.target.value)} aria-label="Shortcut" class="shortcut-input" />
          <input data-testid="canned-text" placeholder="The reply" maxlength="4000" value=${textValue}
            onInput=${(/** @type {any} */ e) => setText(e.target.value)} aria-label="Reply text" />
        </div>
        <div class="row">
          <button class="btn small" type="submit" data-testid="canned-add" disabled=${!shortcut.trim() || !textValue.trim()}>${editing ? "Save reply" : "Add reply"}</button>
          ${editing ? html`<button class="btn small" type="button" onClick=${() => { setEditing(0); setShortcut(""); setText(""); }}>Cancel</button>` : null}
        </div>
      </form>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
    </section>
  `;
}

/** The embed line, and the identity secret for verified visitors. @param {{store: AdminStore, shop: Shop}} props */
function Embed({ store, shop }) {
  const [secret, setSecret] = useState("");
  const [error, setError] = useState("");
  const [copied, setCopied] = useState(false);
  const snippet = `<script src="${location.origin}/widget.js" data-shop="${shop.shop_id}" async></script>`;
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(snippet);
      setCopied(true);
      setTimeout(() => setCopied(false), 1500);
    } catch {
      setError("Copy it by hand: select the line above.");
    }
  };
  const reveal = async () => {
    setError("");
    try {
      setSecret((await store.api.identitySecret(shop.shop_id)).identity_secret);
    } catch (e) {
      setError(describeError(e));
    }
  };
  const s = secret || "SECRET";
  return html`
    <section class="card">
      <h2>Chat widget</h2>
      <p class="muted small">Paste this line into the shop's pages, before <code>${"</body>"}</code>:</p>
      <pre class="snippet"><code data-testid="widget-snippet">${snippet}</code></pre>
      <div class="row"><button class="btn small" onClick=${copy}>${copied ? "Copied" : "Copy"}</button>
        <a class="btn small" href=${`/widget?shop=${shop.shop_id}`} target="_blank" rel="noopener">Try the chat</a></div>
      <h3>Signed-in customers</h3>
      <p class="muted small">
        Visitors are guests unless your site vouches for them: add <code>data-user-id</code> (your id of the user),
        <code>data-user-name</code> and <code>data-user-hash</code>, the lowercase hex HMAC-SHA256 of the id under this
        shop's identity secret. Compute the hash on your server; never put the secret in a page.
      </p>
      ${secret
        ? html`<pre class="snippet"><code data-testid="identity-secret">${secret}</code></pre>`
        : html`<button class="btn small" data-testid="identity-secret-show" onClick=${reveal}>Show the identity secret</button>`}
      <pre class="snippet small-code"><code>${`Node:   crypto.createHmac("sha256", "${s}").update(userId).digest("hex")
Python: hmac.new(b"${s}", user_id.encode(), hashlib.sha256).hexdigest()
PHP:    hash_hmac("sha256", $userId, "${s}")
Go:     m := hmac.New(sha256.New, []byte("${s}")); m.Write([]byte(userID)); hex.EncodeToString(m.Sum(nil))

<script src="${location.origin}/widget.js" data-shop="${shop.shop_id}"
  data-user-id="42" data-user-name="Ann" data-user-hash="{the hash of 42}" async></script>`}</code></pre>
      ${error && html`<p class="form-error" role="alert">${error}</p>`}
    </section>
  `;
}
