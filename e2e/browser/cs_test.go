package browser

// Tests of customer service in the browser: the widget embedded in a
// shop's own site (another origin), the agent desk, the admin page. They
// need the server's PROTOCOL §6 and §8 (guests, queue events, take,
// canned replies) and the extensions of docs/protocol.md (names by uid,
// peer_read_seq, page context, customer info).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
)

// widgetFrame is the widget's iframe in a host page.
func widgetFrame(p *Page) *Frame {
	return p.frame(tid("widget-frame"), "/widget?shop=")
}

// createShop makes a shop over REST as the admin.
func createShop(t *testing.T, srv *imtest.Server, name, welcome, offline string) int64 {
	t.Helper()
	var s struct {
		ShopID int64 `json:"shop_id"`
	}
	srv.MustDo(t, "POST", "/api/v1/shops", srv.Admin.Token, map[string]any{"name": name, "welcome_message": welcome, "offline_message": offline}, http.StatusCreated, &s)
	return s.ShopID
}

func addAgent(t *testing.T, srv *imtest.Server, shop int64, u imtest.User) {
	t.Helper()
	srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/shops/%d/agents", shop), srv.Admin.Token, map[string]any{"uid": u.UID}, http.StatusOK, nil)
}

// signInAt signs in through the form of path (/desk, /admin).
func (p *Page) signInAt(path string, username, password string) {
	p.t.Helper()
	p.open(path)
	p.setValue(tid("auth-username"), username)
	p.setValue(tid("auth-password"), password)
	p.click(tid("auth-login"))
	p.waitVisible(tid("logout"))
}

// deskSignIn signs an agent in to the desk and waits until it is connected.
func (p *Page) deskSignIn(u imtest.User) {
	p.t.Helper()
	p.signInAt("/desk", u.Username, "password1")
	p.waitJS("connection online", q(tid("connection"))+"?.dataset.state === 'online'")
	p.waitJS("online right after sign-in", q(tid("desk-availability"))+"?.dataset.state === 'online'")
}

// openWidget opens the host page and the widget on it.
func (p *Page) openWidget(hostURL string) *Frame {
	p.t.Helper()
	p.run("open the shop's site", navigate(hostURL))
	p.click(tid("widget-launcher"))
	p.waitVisible(tid("widget-frame"))
	f := widgetFrame(p)
	f.waitVisible(tid("composer"))
	return f
}

func sel(id, attr string, v int64) string {
	return tid(id) + `[data-` + attr + `="` + strconv.FormatInt(v, 10) + `"]`
}

func status(msg string) string {
	return msg + "?.querySelector('" + tid("message-status") + "')?.dataset.state"
}

// TestWidgetAndDesk: customers write through the widget embedded in a
// shop's site while no agent is available, and queue; agents take them at
// the desk, answer with canned replies, see typing and read state both
// ways, transfer and close; the customer's next message opens a new
// session, and a reload of the widget keeps the conversation.
func TestWidgetAndDesk(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Green Leaf", "Welcome to Green Leaf! How can we help?", "All our agents are busy; we will answer here soon.")
	ann, ben := person(t, srv, "ann"), person(t, srv, "ben")
	addAgent(t, srv, shop, ann)
	addAgent(t, srv, shop, ben)
	srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/shops/%d/canned", shop), ann.Token,
		map[string]string{"shortcut": "thanks", "text": "Thanks for waiting! Let me check your order."}, http.StatusCreated, nil)
	host := hostSite(t, fmt.Sprintf(`<script src="%s/widget.js" data-shop="%d" async></script>`, srv.URL, shop))

	b := newBrowser(t)

	// Ben is at the desk but away: customers queue.
	pben := b.newPage("ben desk", srv.URL, Desktop)
	pben.acceptDialogs()
	pben.deskSignIn(ben)
	pben.click(tid("desk-availability"))
	pben.waitJS("away", q(tid("desk-availability"))+"?.dataset.state === 'away'")

	// The first customer: welcome, offline message, position 1.
	c1 := b.newPage("customer 1", host, Desktop)
	f1 := c1.openWidget(host + "/plants/monstera")
	if f1.str("document.referrer") != "" {
		t.Errorf("the widget gets the host page as referrer")
	}
	f1.typeText(`input[autocomplete="name"]`, "Carla")
	f1.typeText(tid("composer"), "Hello, where is my order?")
	f1.pressEnter()
	f1.waitJS("welcome", msgWithText("Welcome to Green Leaf! How can we help?"))
	f1.waitJS("offline message", msgWithText("All our agents are busy; we will answer here soon."))
	f1.waitJS("queue position 1", q(tid("queue-status"))+"?.dataset.position === '1'")
	f1.typeText(tid("composer"), "It is order 1234.")
	f1.pressEnter()
	f1.waitJS("second message stored", msgWithText("It is order 1234.")+"?.dataset.seq")
	c1.shot("widget-queued")
	customer1 := int64(0)
	if n, err := strconv.ParseInt(f1.str(msgWithText("It is order 1234.")+".dataset.from"), 10, 64); err == nil {
		customer1 = n
	}

	// The second customer is number 2.
	c2 := b.newPage("customer 2", host, Phone)
	f2 := c2.openWidget(host)
	f2.typeText(tid("composer"), "Do you ship to Norway?")
	f2.pressEnter()
	f2.waitJS("queue position 2", q(tid("queue-status"))+"?.dataset.position === '2'")
	c2.shot("widget-phone-queued")

	// Ben sees both, oldest first, and takes the first.
	pben.waitJS("two waiting", qa(tid("queue-list")+" "+tid("queue-item"))+".length === 2")
	if got := pben.str(q(tid("queue-item")) + ".dataset.customer"); got != strconv.FormatInt(customer1, 10) {
		t.Errorf("the first in the queue is customer %s, want %d", got, customer1)
	}
	pben.shot("desk-queue")
	pben.click(tid("queue-item") + " " + tid("queue-take"))
	pben.waitJS("session listed", q(sel("session-item", "customer", customer1)))
	pben.waitJS("the backlog", msgWithText("It is order 1234."))
	seqs, texts := pben.shown()
	checkContiguous(t, "ben", seqs, len(seqs))
	if len(texts) < 4 || texts[0] != "Hello, where is my order?" {
		t.Errorf("ben shows %q, want the customer's messages in order from the first", texts)
	}
	pben.waitJS("customer panel", q(tid("customer-panel")+" "+tid("customer-name"))+"?.textContent === 'Carla'")
	pben.waitJS("the page the customer writes from", "document.body.textContent.includes('Monstera deliciosa')")
	pben.waitJS("past sessions listed", qa(tid("customer-sessions")+" li")+".length >= 1")
	f2.waitJS("customer 2 moves up", q(tid("queue-status"))+"?.dataset.position === '1'")

	// Ann comes online: the second customer goes to her. Then Ben is back
	// (an away agent's customer who writes goes back to the queue).
	pann := b.newPage("ann desk", srv.URL, Desktop)
	pann.acceptDialogs()
	pann.deskSignIn(ann)
	pann.waitJS("customer 2 assigned to ann", qa(tid("session-item"))+".length === 1")
	customer2 := pann.str(q(tid("session-item")) + ".dataset.customer")
	f2.waitGone(tid("queue-status"))
	f2.waitJS("ann's name", q(tid("agent-name"))+"?.textContent === "+jsString(ann.Username))
	pben.click(tid("desk-availability"))
	pben.waitJS("online", q(tid("desk-availability"))+"?.dataset.state === 'online'")

	// Read both ways: the customer's messages are read at the desk.
	f1.waitJS("read by the agent", status(msgWithText("It is order 1234."))+" === 'read'")

	// Typing both ways.
	f1.typeText(tid("composer"), "One more thing")
	pben.waitJS("customer typing", q(tid("typing"))+"?.textContent.includes('Carla')")
	pben.typeText(tid("composer"), "Sure, one moment")
	f1.waitJS("agent typing", q(tid("typing"))+"?.textContent.includes("+jsString(ben.Username)+")")
	f1.waitJS("the agent's name", q(tid("agent-name"))+"?.textContent === "+jsString(ben.Username))
	f1.waitGone(tid("queue-status"))
	c1.shot("widget-desktop")
	pben.shot("desk-desktop")
	f1.click(tid("composer"))
	f1.pressEnter()
	pben.waitJS("the customer's message", msgWithText("One more thing"))
	pben.waitGone(tid("typing"))
	pben.click(tid("composer"))
	pben.pressEnter()
	f1.waitJS("the agent's message", msgWithText("Sure, one moment"))

	// A canned reply: "/" lists them, choosing one fills the composer.
	pben.typeText(tid("composer"), "/tha")
	pben.waitVisible(tid("canned-list"))
	pben.click(tid("canned-item"))
	pben.waitJS("canned text in the composer", q(tid("composer"))+".value === 'Thanks for waiting! Let me check your order.'")
	pben.pressEnter()
	f1.waitJS("the reply", msgWithText("Thanks for waiting! Let me check your order.")+"?.dataset.from === '"+strconv.FormatInt(ben.UID, 10)+"'")
	pben.waitJS("read by the customer", status(msgWithText("Thanks for waiting! Let me check your order."))+" === 'read'")

	// Ann transfers it to Ben.
	pann.click(tid("session-item") + " a")
	pann.waitJS("customer 2's message", msgWithText("Do you ship to Norway?"))
	pann.click(tid("transfer-open"))
	pann.click(sel("transfer-agent", "uid", ben.UID))
	pann.waitGone(tid("session-item"))
	pben.waitJS("transferred to ben", q(tid("session-item")+`[data-customer="`+customer2+`"]`))
	f2.waitJS("ben's name", q(tid("agent-name"))+"?.textContent === "+jsString(ben.Username))

	// Ben closes the first customer's session; her next message opens a new one.
	pben.click(sel("session-item", "customer", customer1) + " a")
	firstSession := pben.str(q(sel("session-item", "customer", customer1)) + ".dataset.session")
	pben.click(tid("session-close"))
	pben.waitGone(sel("session-item", "customer", customer1))
	f1.waitGone(tid("agent-name"))
	f1.typeText(tid("composer"), "Back again")
	f1.pressEnter()
	pben.waitJS("a new session", q(sel("session-item", "customer", customer1))+"?.dataset.session && "+q(sel("session-item", "customer", customer1))+".dataset.session !== "+jsString(firstSession))

	// A reload keeps the conversation: every message once, in order.
	var stored []map[string]any
	srv.MustDo(t, "GET", fmt.Sprintf("/api/v1/conversations/s:%d:%d/messages?after_seq=0&limit=200", shop, customer1), srv.Admin.Token, nil, http.StatusOK, &stored)
	f1.waitJS("every stored message shown", qa(tid("message")+"[data-seq]")+".length === "+strconv.Itoa(len(stored)))
	before, beforeTexts := f1.shown()
	c1.run("reload the shop's page", navigate(host+"/plants/monstera"))
	c1.click(tid("widget-launcher"))
	f1 = widgetFrame(c1)
	f1.waitJS("history after reload", msgWithText("Back again"))
	after, afterTexts := f1.shown()
	checkContiguous(t, "customer 1 after reload", after, len(before))
	if fmt.Sprint(afterTexts) != fmt.Sprint(beforeTexts) {
		t.Errorf("after a reload the widget shows %q, before %q", afterTexts, beforeTexts)
	}
	f1.typeText(tid("composer"), "Still me")
	f1.pressEnter()
	pben.click(sel("session-item", "customer", customer1) + " a")
	pben.waitJS("same customer after the reload", msgWithText("Still me"))
}

// TestWidgetUpload: an image from the widget reaches the desk inline; a
// card from the desk reaches the widget.
func TestWidgetUpload(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Pixel Prints", "Hi! Send us your photo.", "")
	dora := person(t, srv, "dora")
	addAgent(t, srv, shop, dora)
	host := hostSite(t, fmt.Sprintf(`<script src="%s/widget.js" data-shop="%d" async></script>`, srv.URL, shop))
	pic := filepath.Join(t.TempDir(), "photo.png")
	writePNG(t, pic, 80, 60)

	b := newBrowser(t)
	pd := b.newPage("dora desk", srv.URL, Desktop)
	pd.deskSignIn(dora)
	c := b.newPage("customer", host, Desktop)
	f := c.openWidget(host)
	f.typeText(tid("composer"), "Can you print this?")
	f.pressEnter()
	f.waitJS("assigned", q(tid("agent-name"))+"?.textContent === "+jsString(dora.Username))
	f.upload(tid("attach"), pic)
	pd.click(tid("session-item") + " a")
	img := q(tid("message") + "[data-seq] " + tid("message-body") + " img")
	pd.waitJS("the photo at the desk", img+"?.complete && "+img+".naturalWidth === 80")
	f.waitJS("the photo in the widget", img+"?.naturalHeight === 60")

	// The agent answers with a card.
	pd.click(`button[aria-label="Send a card"]`)
	pd.setValue(`input[aria-label="Card title"]`, "Photo prints 10x15")
	pd.setValue(`input[aria-label="Card description"]`, "Glossy or matte, ready tomorrow.")
	pd.setValue(`input[aria-label="Card link"]`, "https://example.com/prints")
	pd.click(`.card-form button[type="submit"]`)
	card := q(tid("message") + "[data-seq] " + tid("message-body") + ".card")
	f.waitJS("the card", card+"?.textContent.includes('Photo prints 10x15')")
	if got := f.str(card + ".querySelector('a')?.href"); got != "https://example.com/prints" {
		t.Errorf("the card links to %q", got)
	}
}

// TestWidgetVisitor: a shop's signed-in customer (data-user-id and
// data-user-hash, the hash made with the shop's identity secret) is the
// same customer in another browser; a wrong hash falls back to a guest.
func TestWidgetVisitor(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Book Nook", "Hello reader!", "")
	ida := person(t, srv, "ida")
	addAgent(t, srv, shop, ida)
	var sec struct {
		Secret string `json:"identity_secret"`
	}
	srv.MustDo(t, "GET", fmt.Sprintf("/api/v1/shops/%d/identity-secret", shop), srv.Admin.Token, nil, http.StatusOK, &sec)
	m := hmac.New(sha256.New, []byte(sec.Secret))
	m.Write([]byte("customer-42"))
	hash := hex.EncodeToString(m.Sum(nil))
	embed := fmt.Sprintf(`<script src="%s/widget.js" data-shop="%d" data-user-id="customer-42" data-user-name="Jo March" data-user-hash="%s" async></script>`, srv.URL, shop, hash)
	host := hostSite(t, embed)

	b := newBrowser(t)
	pi := b.newPage("ida desk", srv.URL, Desktop)
	pi.deskSignIn(ida)
	c1 := b.newPage("jo's laptop", host, Desktop)
	f1 := c1.openWidget(host)
	f1.typeText(tid("composer"), "Is Little Women in stock?")
	f1.pressEnter()
	f1.waitJS("welcome", msgWithText("Hello reader!"))
	pi.waitJS("the session", q(tid("session-item")))
	pi.click(tid("session-item") + " a")
	pi.waitJS("the visitor's name", q(tid("customer-name"))+"?.textContent === 'Jo March'")

	// Another browser, same customer of the shop: the same conversation.
	c2 := b.newPage("jo's phone", host, Phone)
	f2 := c2.openWidget(host)
	f2.waitJS("the history", msgWithText("Is Little Women in stock?"))
	f2.typeText(tid("composer"), "From my phone")
	f2.pressEnter()
	pi.waitJS("both in one session", msgWithText("From my phone"))
	f1.waitJS("on the laptop too", msgWithText("From my phone"))
	if n := pi.str(qa(tid("session-item")) + ".length"); n != "1" {
		t.Errorf("ida has %s sessions, want 1", n)
	}

	// A wrong hash is refused: a guest, with a conversation of its own.
	bad := hostSite(t, fmt.Sprintf(`<script src="%s/widget.js" data-shop="%d" data-user-id="customer-42" data-user-hash="%s" async></script>`, srv.URL, shop, strings.Repeat("0", 64)))
	c3 := b.newPage("impostor", bad, Desktop)
	c3.allow("status of 401")
	f3 := c3.openWidget(bad)
	f3.typeText(tid("composer"), "let me in")
	f3.pressEnter()
	f3.waitJS("stored", msgWithText("let me in")+"?.dataset.seq")
	if strings.Contains(f3.str("document.body.textContent"), "Little Women") {
		t.Error("a wrong hash sees the visitor's conversation")
	}
}

// TestWidgetServerRestart: the server goes away under a customer and an
// agent; a message written meanwhile stays pending, and once the server is
// back both sides show every message once, in order, without a reload.
func TestWidgetServerRestart(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Night Owl", "", "")
	kim := person(t, srv, "kim")
	addAgent(t, srv, shop, kim)
	host := hostSite(t, fmt.Sprintf(`<script src="%s/widget.js" data-shop="%d" async></script>`, srv.URL, shop))
	b := newBrowser(t)
	pk := b.newPage("kim desk", srv.URL, Desktop)
	pk.deskSignIn(kim)
	c := b.newPage("customer", host, Desktop)
	f := c.openWidget(host)
	f.typeText(tid("composer"), "first")
	f.pressEnter()
	pk.click(tid("session-item") + " a")
	pk.waitJS("first", msgWithText("first"))

	for _, p := range []*Page{pk, c} {
		p.allow("ERR_CONNECTION_REFUSED", "WebSocket connection to", "Failed to load resource", "net::ERR_")
	}
	addr := srv.App.HTTPAddr()
	srv.Close()
	pk.waitJS("desk reconnecting", q(tid("connection"))+"?.dataset.state === 'reconnecting'")
	f.waitJS("widget reconnecting", q(tid("connection"))+"?.dataset.state === 'reconnecting'")
	f.typeText(tid("composer"), "written while down")
	f.pressEnter()
	f.waitJS("pending", status(msgWithText("written while down"))+" === 'pending'")

	srv2 := imtest.Start(t, imtest.Options{DBURL: srv.DBURL, HTTPAddr: addr})
	kim2 := srv2.Login(t, kim.Username, "password1")
	f.waitJS("widget online", q(tid("connection"))+"?.dataset.state === 'online'")
	pk.waitJS("desk online", q(tid("connection"))+"?.dataset.state === 'online'")
	pk.waitJS("the pending one arrives", msgWithText("written while down"))
	customer := pk.str(q(tid("session-item")) + ".dataset.customer")
	post(t, srv2, kim2, fmt.Sprintf("s:%d:%s", shop, customer), "welcome back")
	f.waitJS("the agent's message", msgWithText("welcome back"))
	for _, p := range []*Page{pk, c} {
		p.disallow()
	}
	var stored []map[string]any
	srv2.MustDo(t, "GET", fmt.Sprintf("/api/v1/conversations/s:%d:%s/messages?after_seq=0&limit=200", shop, customer), srv2.Admin.Token, nil, http.StatusOK, &stored)
	all := qa(tid("message")+"[data-seq]") + ".length === " + strconv.Itoa(len(stored))
	f.waitJS("every message in the widget", all)
	pk.waitJS("every message at the desk", all)
	fs, ft := f.shown()
	checkContiguous(t, "customer", fs, len(fs))
	ks, kt := pk.shown()
	checkContiguous(t, "kim", ks, len(ks))
	if fmt.Sprint(ft) != fmt.Sprint(kt) {
		t.Errorf("the customer shows %q, kim %q", ft, kt)
	}
	count := 0
	for _, s := range ft {
		if s == "written while down" {
			count++
		}
	}
	if count != 1 {
		t.Errorf("the message written while down shows %d times", count)
	}
}

// TestDeskPhone: on a phone the desk shows one pane at a time: the lists,
// then the session with a way back; the customer panel opens over it.
func TestDeskPhone(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shop := createShop(t, srv, "Pocket Shop", "Hi! We are here.", "")
	lea := person(t, srv, "lea")
	addAgent(t, srv, shop, lea)
	var guest struct {
		AccessToken string `json:"access_token"`
		UID         int64  `json:"uid"`
	}
	srv.MustDo(t, "POST", "/api/v1/auth/guest", "", map[string]string{"name": "Max"}, http.StatusCreated, &guest)
	conv := fmt.Sprintf("s:%d:%d", shop, guest.UID)
	b := newBrowser(t)
	p := b.newPage("lea phone", srv.URL, Phone)
	p.deskSignIn(lea)
	srv.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", guest.AccessToken, map[string]any{"type": "text", "body": "My parcel never arrived."}, http.StatusCreated, nil)
	p.waitJS("the session", q(tid("session-item")+" "+tid("session-unread"))+"?.textContent === '2'")
	p.shot("desk-phone-list")
	p.click(tid("session-item") + " a")
	p.waitJS("the message", msgWithText("My parcel never arrived."))
	if p.visibleNow(tid("session-list")) {
		t.Error("phone: the session list is shown next to the session")
	}
	p.shot("desk-phone-session")
	p.click(`button[aria-label="Customer details"]`)
	p.waitJS("the customer", q(tid("customer-panel")+" "+tid("customer-name"))+"?.textContent === 'Max'")
	p.waitVisible(tid("customer-panel"))
	p.shot("desk-phone-customer")
	p.click(`button[aria-label="Close"]`)
	p.waitGone(tid("customer-panel"))
	p.click(`button[aria-label="Back to sessions"]`)
	p.waitVisible(tid("session-list"))
	p.waitGone(tid("session-item") + " " + tid("session-unread"))
}

// TestDeskTwoShops: an agent of two shops picks the shop with desk-shop;
// the queue and the sessions are the selected shop's, and the other shop's
// unread messages show in the picker.
func TestDeskTwoShops(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	shopA := createShop(t, srv, "Apples", "", "")
	shopB := createShop(t, srv, "Bananas", "", "")
	mo := person(t, srv, "moe")
	addAgent(t, srv, shopA, mo)
	addAgent(t, srv, shopB, mo)
	guest := func(name string) (string, int64) {
		var g struct {
			AccessToken string `json:"access_token"`
			UID         int64  `json:"uid"`
		}
		srv.MustDo(t, "POST", "/api/v1/auth/guest", "", map[string]string{"name": name}, http.StatusCreated, &g)
		return g.AccessToken, g.UID
	}
	b := newBrowser(t)
	p := b.newPage("moe desk", srv.URL, Desktop)
	p.deskSignIn(mo)
	p.waitVisible(tid("desk-shop"))
	pick := func(shop int64) {
		t.Helper()
		if _, err := eval[bool](p, "(e => { e.value = '"+strconv.FormatInt(shop, 10)+"'; e.dispatchEvent(new Event('change', {bubbles: true})); return true })("+q(tid("desk-shop"))+")"); err != nil {
			t.Fatal(err)
		}
	}
	pick(shopA)
	tokA, uidA := guest("Ana")
	tokB, uidB := guest("Bo")
	srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/conversations/s:%d:%d/messages", shopA, uidA), tokA, map[string]any{"type": "text", "body": "apples?"}, http.StatusCreated, nil)
	srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/conversations/s:%d:%d/messages", shopB, uidB), tokB, map[string]any{"type": "text", "body": "bananas?"}, http.StatusCreated, nil)
	p.waitJS("Ana's session", q(sel("session-item", "customer", uidA)))
	p.waitJS("Bananas has one unread", q(tid("desk-shop")+` option[value="`+strconv.FormatInt(shopB, 10)+`"]`)+"?.textContent.includes('1 unread')")
	if p.visibleNow(sel("session-item", "customer", uidB)) {
		t.Error("a session of the other shop is listed")
	}
	pick(shopB)
	p.waitJS("Bo's session", q(sel("session-item", "customer", uidB)))
	p.waitGone(sel("session-item", "customer", uidA))
}
