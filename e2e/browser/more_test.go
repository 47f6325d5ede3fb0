package browser

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
)

// shown returns the seqs and texts of the messages in the open conversation.
func (p *Page) shown() (seqs []int, texts []string) {
	p.t.Helper()
	raw := p.str("JSON.stringify(" + qa(tid("message")+"[data-seq]") + ".map(m => [Number(m.dataset.seq), m.querySelector('" + tid("message-body") + "')?.textContent ?? '']))")
	var rows [][2]any
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		p.t.Fatalf("%s: decode %s: %v", p.name, raw, err)
	}
	for _, r := range rows {
		seqs = append(seqs, int(r[0].(float64)))
		texts = append(texts, r[1].(string))
	}
	return seqs, texts
}

// checkContiguous fails unless seqs is exactly 1..n.
func checkContiguous(t *testing.T, who string, seqs []int, n int) {
	t.Helper()
	if len(seqs) != n {
		t.Fatalf("%s shows %d messages, want %d: %v", who, len(seqs), n, seqs)
	}
	for i, s := range seqs {
		if s != i+1 {
			t.Fatalf("%s shows seqs %v, want 1..%d in order, each once", who, seqs, n)
		}
	}
}

// TestServerRestart: the server goes away under an open page and comes back
// on the same address and database; the page shows it is reconnecting,
// reconnects by itself and shows every message sent meanwhile exactly
// once, in order, without a reload.
func TestServerRestart(t *testing.T) {
	for _, engine := range imtest.Engines {
		t.Run(string(engine), func(t *testing.T) { testServerRestart(t, engine) })
	}
}

func testServerRestart(t *testing.T, engine imtest.Engine) {
	srv := imtest.Start(t, imtest.Options{Engine: engine})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := single(alice, bob)
	post(t, srv, bob, conv, "before 1")
	post(t, srv, alice, conv, "before 2")

	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pa.signIn(alice)
	pa.click(convItem(conv) + " a")
	pa.waitJS("history", msgWithText("before 2"))

	// While the server is down the browser reports refused connections.
	pa.allow("ERR_CONNECTION_REFUSED", "WebSocket connection to", "Failed to load resource", "net::ERR_")
	addr := srv.App.HTTPAddr()
	srv.Close()
	pa.waitJS("reconnecting", q(tid("connection"))+"?.dataset.state === 'reconnecting'")
	pa.shot("restart-reconnecting")

	// A message written while the server is down stays pending, then is
	// sent once after the reconnect (same cid, stored once).
	pa.typeText(tid("composer"), "written while down")
	pa.pressEnter()
	pa.waitJS("pending", msgWithText("written while down")+"?.querySelector('"+tid("message-status")+"')?.dataset.state === 'pending'")

	srv2 := imtest.Start(t, imtest.Options{Engine: engine, DBURL: srv.DBURL, HTTPAddr: addr})
	var want []string
	for i := 1; i <= 8; i++ {
		s := fmt.Sprintf("meanwhile %d", i)
		post(t, srv2, bob, conv, s)
		want = append(want, s)
	}
	pa.waitJS("online again", q(tid("connection"))+"?.dataset.state === 'online'")
	pa.waitJS("the last message", msgWithText("meanwhile 8"))
	// And one live after the reconnect.
	post(t, srv2, bob, conv, "after")
	pa.waitJS("live after reconnect", msgWithText("after"))
	pa.disallow()

	pa.waitJS("the pending one sent", msgWithText("written while down")+"?.dataset.seq")
	seqs, texts := pa.shown()
	checkContiguous(t, "alice", seqs, 12)
	// The one written while down was stored at the reconnect, somewhere
	// among the others; the rest keep their order.
	var others []string
	down := 0
	for _, s := range texts {
		if s == "written while down" {
			down++
		} else {
			others = append(others, s)
		}
	}
	want = append(append([]string{"before 1", "before 2"}, want...), "after")
	if down != 1 || strings.Join(others, "|") != strings.Join(want, "|") {
		t.Errorf("alice shows %q, want %q and \"written while down\" once", texts, want)
	}
	var stored []map[string]any
	srv2.MustDo(t, "GET", "/api/v1/conversations/"+conv+"/messages?after_seq=0", bob.Token, nil, http.StatusOK, &stored)
	if len(stored) != 12 {
		t.Errorf("the server stored %d messages, want 12", len(stored))
	}
	if got := pa.str(qa(convItem(conv)) + ".length"); got != "1" {
		t.Errorf("the conversation is listed %s times", got)
	}
}

// TestRoomThreeMembers: a room created in the page, two more members, messages
// both ways, the member list, removal by the owner, leaving.
func TestRoomThreeMembers(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob, carol := srv.Register(t, "alice"), srv.Register(t, "bob"), srv.Register(t, "carol")
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pa.signIn(alice)

	if !pa.visibleNow(tid("room-create-name")) {
		pa.click(tid("rooms-open"))
	}
	pa.setValue(tid("room-create-name"), "Team room")
	pa.click(tid("room-create-submit"))
	pa.waitJS("room open", q(tid("message-list"))+"?.dataset.conv?.startsWith('r:')")
	conv := pa.str(q(tid("message-list")) + ".dataset.conv")
	room, _ := strconv.ParseInt(strings.TrimPrefix(conv, "r:"), 10, 64)
	pa.waitJS("listed before its first message", q(convItem(conv)+" "+tid("conv-title"))+"?.textContent === 'Team room'")

	for _, u := range []imtest.User{bob, carol} {
		srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", room), u.Token, nil, http.StatusOK, nil)
	}
	pb := b.newPage("bob", srv.URL, Desktop)
	pc := b.newPage("carol", srv.URL, Desktop)
	pb.signIn(bob)
	pc.signIn(carol)
	pb.click(convItem(conv) + " a")
	pc.click(convItem(conv) + " a")

	if !pa.visibleNow(tid("room-members")) {
		pa.click(tid("rooms-open"))
	}
	pa.waitJS("three members", qa(tid("room-members")+" "+tid("room-member"))+".length === 3")

	pa.typeText(tid("composer"), "hello team")
	pa.pressEnter()
	pb.waitJS("bob gets it", msgWithText("hello team"))
	pc.waitJS("carol gets it", msgWithText("hello team"))
	pb.typeText(tid("composer"), "hi from bob")
	pb.pressEnter()
	pa.waitJS("alice gets bob's", msgWithText("hi from bob")+"?.dataset.from === '"+strconv.FormatInt(bob.UID, 10)+"'")
	pc.waitJS("carol gets bob's", msgWithText("hi from bob"))
	pc.typeText(tid("composer"), "and carol")
	pc.pressEnter()
	pa.waitJS("alice gets carol's", msgWithText("and carol"))
	pb.waitJS("bob gets carol's", msgWithText("and carol"))
	for _, p := range []*Page{pa, pb, pc} {
		seqs, _ := p.shown()
		checkContiguous(t, p.name, seqs, 3)
	}
	pa.shot("room-desktop")

	// The owner removes carol; bob leaves.
	pa.click(tid("room-member") + `[data-uid="` + strconv.FormatInt(carol.UID, 10) + `"] button`)
	pa.waitJS("two members", qa(tid("room-members")+" "+tid("room-member"))+".length === 2")
	if !pb.visibleNow(tid("room-leave")) {
		pb.click(tid("rooms-open"))
	}
	pb.click(tid("room-leave"))
	pb.waitGone(convItem(conv))
	pa.waitJS("one member", qa(tid("room-members")+" "+tid("room-member"))+".length === 1")
}

// visibleNow reports whether sel is shown right now.
func (p *Page) visibleNow(sel string) bool {
	p.t.Helper()
	ok, err := eval[bool](p, visible(sel))
	return err == nil && ok
}

// TestBroadcast: the newest broadcast shows as a banner on / and in the sys
// conversation, which is read-only.
func TestBroadcast(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice := srv.Register(t, "alice")
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pa.signIn(alice)
	srv.MustDo(t, "POST", "/api/v1/broadcasts", srv.Admin.Token, map[string]string{"text": "Maintenance tonight at 22:00"}, http.StatusCreated, nil)
	pa.waitJS("banner", q(tid("broadcast"))+"?.textContent.includes('Maintenance tonight')")
	pa.waitVisible(convItem("sys"))
	pa.click(tid("broadcast"))
	pa.waitVisible(tid("message-list") + `[data-conv="sys"]`)
	pa.waitJS("the broadcast as a message", msgWithText("Maintenance tonight at 22:00"))
	if pa.visibleNow(tid("composer")) {
		t.Error("the sys conversation has a composer")
	}
	srv.MustDo(t, "POST", "/api/v1/broadcasts", srv.Admin.Token, map[string]string{"text": "Done, thanks"}, http.StatusCreated, nil)
	pa.waitJS("newest banner", q(tid("broadcast"))+"?.textContent.includes('Done, thanks')")
	pa.waitJS("second broadcast", msgWithText("Done, thanks"))
}

// TestAuth: register, reload stays signed in, logout, refusals shown.
func TestAuth(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	taken := srv.Register(t, "taken")
	b := newBrowser(t)
	p := b.newPage("new user", srv.URL, Phone)
	p.open("/")
	p.waitJS("offline while signed out", q(tid("connection"))+"?.dataset.state === 'offline'")
	p.shot("signin-phone")
	p.setValue(tid("auth-username"), "newcomer")
	p.setValue(tid("auth-password"), "password1")
	p.click(tid("auth-register"))
	p.waitVisible(tid("logout"))
	p.waitJS("online", q(tid("connection"))+"?.dataset.state === 'online'")

	p.open("/")
	p.waitVisible(tid("logout"))
	p.waitJS("online after reload", q(tid("connection"))+"?.dataset.state === 'online'")

	p.click(tid("logout"))
	p.waitVisible(tid("auth-login"))
	p.waitGone(tid("logout"))
	p.open("/")
	p.waitVisible(tid("auth-login"))

	// Refusals: the browser logs the 401 and 409 answers themselves.
	p.allow("status of 401", "status of 409")
	p.setValue(tid("auth-username"), "newcomer")
	p.setValue(tid("auth-password"), "wrong-password")
	p.click(tid("auth-login"))
	p.waitJS("error shown", q(tid("auth-error"))+"?.textContent.length > 0")
	p.setValue(tid("auth-username"), taken.Username)
	p.setValue(tid("auth-password"), "password1")
	p.click(tid("auth-register"))
	p.waitJS("taken", q(tid("auth-error"))+"?.textContent.includes('taken')")
}

// TestTwoTabs: two tabs of one user stay consistent: a message sent in one
// appears in the other (the inbox echo), read positions follow on focus.
func TestTwoTabs(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := single(alice, bob)
	post(t, srv, bob, conv, "hello")
	b := newBrowser(t)
	p1 := b.newPage("alice tab 1", srv.URL, Desktop)
	p1.signIn(alice)
	p2 := p1.newTab("alice tab 2")
	p2.open("/")
	p2.waitVisible(tid("logout"))
	p2.waitJS("online", q(tid("connection"))+"?.dataset.state === 'online'")
	p2.waitJS("unread in tab 2", q(convItem(conv)+" "+tid("conv-unread"))+"?.textContent === '1'")

	p1.click(convItem(conv) + " a")
	p1.typeText(tid("composer"), "from tab 1")
	p1.pressEnter()
	p2.waitJS("tab 2 sees tab 1's message", q(convItem(conv)+" "+tid("conv-last"))+"?.textContent.includes('from tab 1')")
	p2.click(convItem(conv) + " a")
	p2.waitJS("in the chat", msgWithText("from tab 1"))
	p2.waitGone(convItem(conv) + " " + tid("conv-unread"))
}

// TestHistoryPaging: scrolling to the top loads older messages until the
// first; each shown once, in order.
func TestHistoryPaging(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := single(alice, bob)
	const n = 130
	for i := 1; i <= n; i++ {
		post(t, srv, bob, conv, fmt.Sprintf("message %d", i))
	}
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pa.signIn(alice)
	pa.waitJS("unread", q(convItem(conv)+" "+tid("conv-unread"))+"?.textContent === '130'")
	pa.click(convItem(conv) + " a")
	pa.waitJS("newest", msgWithText(fmt.Sprintf("message %d", n)))
	for i := 0; i < 10; i++ {
		if ok, _ := eval[bool](pa, "!!"+msgWithText("message 1")); ok {
			break
		}
		_, _ = eval[bool](pa, "(e => { e.scrollTop = 0; e.dispatchEvent(new Event('scroll')); return true })("+q(tid("message-list"))+")")
		pa.waitJS("a page loaded", qa(tid("message")+"[data-seq]")+".length >= "+strconv.Itoa(min(n, 50*(i+2)))+" || !!"+msgWithText("message 1"))
	}
	pa.waitJS("the first message", msgWithText("message 1"))
	seqs, _ := pa.shown()
	checkContiguous(t, "alice", seqs, n)
}
