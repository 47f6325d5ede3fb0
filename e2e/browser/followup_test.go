package browser

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/imserver/imserver/internal/imtest"
)

// TestChatKeepsUp: the chat at / learns of a room the user was added to
// from the inbox (no polling, no reload), names people it never saw from
// GET /users?uid=, keeps a second tab's unread counts right from the
// user's own read events, shows "read" after a reload (peer_read_seq), and
// revokes its token when signing out.
func TestChatKeepsUp(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	alice, bob, carol := person(t, srv, "alice"), person(t, srv, "bob"), person(t, srv, "carol")
	b := newBrowser(t)
	p1 := b.newPage("alice", srv.URL, Desktop)
	p1.signIn(alice)
	p2 := p1.newTab("alice tab 2")
	p2.open("/")
	p2.waitJS("tab 2 online", q(tid("connection"))+"?.dataset.state === 'online'")

	// Added to a private room: listed at once, and its messages arrive live.
	var room struct {
		RoomID int64 `json:"room_id"`
	}
	srv.MustDo(t, "POST", "/api/v1/rooms", bob.Token, map[string]any{"name": "Secret plans", "private": true}, http.StatusCreated, &room)
	srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/rooms/%d/members", room.RoomID), bob.Token, map[string]any{"uid": alice.UID}, http.StatusOK, nil)
	rconv := "r:" + strconv.FormatInt(room.RoomID, 10)
	p1.waitJS("the room listed", q(convItem(rconv)+" "+tid("conv-title"))+"?.textContent === 'Secret plans'")
	post(t, srv, bob, rconv, "welcome aboard")
	p1.waitJS("live in the room", q(convItem(rconv)+" "+tid("conv-last"))+"?.textContent.includes('welcome aboard')")

	// Someone new writes: named at once.
	cconv := single(alice, carol)
	post(t, srv, carol, cconv, "hi, it's carol")
	p1.waitJS("carol named", q(convItem(cconv)+" "+tid("conv-title"))+"?.textContent === "+jsString(carol.Username))
	p2.waitJS("unread in tab 2", q(convItem(cconv)+" "+tid("conv-unread"))+"?.textContent === '1'")

	// Read in tab 1: tab 2's count goes, with no reload or focus.
	p1.click(convItem(cconv) + " a")
	p1.waitJS("the message", msgWithText("hi, it's carol"))
	p2.waitGone(convItem(cconv) + " " + tid("conv-unread"))

	// "read" survives a reload.
	p1.typeText(tid("composer"), "hello carol")
	p1.pressEnter()
	p1.waitJS("stored as seq 2", msgWithText("hello carol")+"?.dataset.seq === '2'")
	srv.MustDo(t, "POST", "/api/v1/conversations/"+cconv+"/read", carol.Token, map[string]any{"seq": 2}, http.StatusOK, nil)
	p1.waitJS("read live", status(msgWithText("hello carol"))+" === 'read'")
	p1.open("/#/c/" + cconv)
	p1.waitJS("the chat after reload", msgWithText("hello carol"))
	p1.waitJS("read after reload", status(msgWithText("hello carol"))+" === 'read'")

	// Signing out revokes the token.
	token := p1.str("JSON.parse(localStorage.getItem('imserver.chat')).access_token")
	p2.allow("status of 401", "WebSocket")
	p1.click(tid("logout"))
	p1.waitVisible(tid("auth-login"))
	if status, _ := srv.Do(t, "GET", "/api/v1/me", token, nil); status != http.StatusUnauthorized {
		t.Errorf("the token after signing out: GET /me %d, want 401", status)
	}
}

// TestDeskAlerts: with the desk's tab hidden, a new customer and a new
// message raise a desktop notification, play the chime and count in the
// title; showing the tab clears the count. The browser's Notification,
// AudioContext and visibility are stand-ins that record what the page asks.
func TestDeskAlerts(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Bell Shop", "", "")
	gus := person(t, srv, "gus")
	addAgent(t, srv, shop, gus)
	b := newBrowser(t)
	p := b.newPage("gus desk", srv.URL, Desktop)
	p.run("stand-ins", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: alertStandIns})
		return err
	}))
	p.deskSignIn(gus)
	p.click(tid("desk-availability")) // a click: the page may make sound from now on
	p.click(tid("desk-availability"))
	p.waitJS("online", q(tid("desk-availability"))+"?.dataset.state === 'online'")
	if _, err := eval[bool](p, "window.__hidden = true, document.dispatchEvent(new Event('visibilitychange')), true"); err != nil {
		t.Fatal(err)
	}

	var guest struct {
		AccessToken string `json:"access_token"`
		UID         int64  `json:"uid"`
	}
	srv.MustDo(t, "POST", "/api/v1/auth/guest", "", map[string]string{"name": "Hank"}, http.StatusCreated, &guest)
	conv := fmt.Sprintf("s:%d:%d", shop, guest.UID)
	srv.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", guest.AccessToken, map[string]any{"type": "text", "body": "is anyone there?"}, http.StatusCreated, nil)
	p.waitJS("a notification", "window.__notes.length >= 1")
	p.waitJS("the chime", "window.__chimes >= 1")
	p.waitJS("the title counts", "document.title.startsWith('(')")
	srv.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", guest.AccessToken, map[string]any{"type": "text", "body": "hello?"}, http.StatusCreated, nil)
	p.waitJS("a notification with the message", "window.__notes.some(n => n[1] === 'hello?')")
	if _, err := eval[bool](p, "window.__hidden = false, document.dispatchEvent(new Event('visibilitychange')), true"); err != nil {
		t.Fatal(err)
	}
	p.waitJS("the title is clean", "!document.title.startsWith('(')")
}

// alertStandIns replace the browser's Notification, AudioContext and page
// visibility before the desk's scripts run.
const alertStandIns = `
window.__notes = []; window.__chimes = 0; window.__hidden = false;
window.Notification = class { constructor(t, o) { window.__notes.push([t, o && o.body]); } close() {} };
window.Notification.permission = "granted";
window.Notification.requestPermission = () => Promise.resolve("granted");
Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
Object.defineProperty(document, "hidden", { get: () => window.__hidden });
const node = () => ({ connect(n) { return n; }, start() { window.__chimes++; }, stop() {}, frequency: {}, gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} } });
window.AudioContext = class { constructor() { this.state = "running"; this.currentTime = 0; this.destination = {}; }
  resume() { return Promise.resolve(); } close() { return Promise.resolve(); } createOscillator() { return node(); } createGain() { return node(); } };
`
