package browser

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/imserver/imserver/internal/imtest"
)

// TestSDK runs the JavaScript SDK in a page the way docs/sdk-js.md shows:
// log in, connect, send to a room (the echo comes on the room topic) and
// to a single chat, a refused send, REST errors with the contract's code.
func TestSDK(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	b := newBrowser(t)
	p := b.newPage("sdk", srv.URL, Desktop)
	p.open("/")
	p.waitVisible(tid("auth-login"))
	p.allow("status of 401")
	script := `(async () => {
  const { Api, Client, text, singleConv, ImError } = await import("/sdk/imclient.js");
  const out = {};
  const api = new Api();
  try { await api.login("` + alice.Username + `", "wrong-password"); } catch (e) { out.loginError = [e instanceof ImError, e.status, e.code]; }
  const token = await api.login("` + alice.Username + `", "password1");
  const client = new Client({ token });
  const got = [];
  const states = [];
  client.on("message", (m) => got.push([m.conv, m.seq]));
  client.on("state", (s) => states.push(s));
  await client.connect();
  const room = await client.createRoom("sdk room");
  const env = await client.send("r:" + room.room_id, text("hi room"));
  out.room = [env.conv, env.seq, env.from, env.body];
  const p = client.send(singleConv(token.uid, ` + itoa(bob.UID) + `), text("hi bob"));
  out.cid = p.cid;
  const env2 = await p;
  out.single = [env2.seq, env2.cid === p.cid, env2.to];
  try { await client.send(singleConv(token.uid, 999999), text("anyone?")); } catch (e) { out.refused = [e instanceof ImError, e.code]; }
  out.got = got;
  out.states = states;
  out.pending = client.pending().length;
  client.close();
  out.closed = client.state;
  return JSON.stringify(out);
})()`
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		LoginError []any   `json:"loginError"`
		Room       []any   `json:"room"`
		CID        string  `json:"cid"`
		Single     []any   `json:"single"`
		Refused    []any   `json:"refused"`
		Got        [][]any `json:"got"`
		States     []string
		Pending    int
		Closed     string
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	t.Logf("%s", raw)
	check := func(what string, got, want any) {
		t.Helper()
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s = %s, want %s", what, g, w)
		}
	}
	check("login error", out.LoginError, []any{true, 401, "unauthorized"})
	check("room send", out.Room[1:], []any{1, alice.UID, "hi room"})
	check("single send", out.Single, []any{1, true, bob.UID})
	check("refused send", out.Refused, []any{true, "not_found"})
	check("messages handed over", len(out.Got), 2)
	check("pending after", out.Pending, 0)
	check("state after close", out.Closed, "offline")
	if out.CID == "" {
		t.Error("the send promise has no cid")
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }
