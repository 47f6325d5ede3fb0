package browser

// Tests of customer service in the browser: the widget embedded in a
// shop's own site (another origin), the agent desk, the admin page. They
// need the server's PROTOCOL §6 and §8 (guests, queue events, take,
// canned replies) and the extensions of docs/protocol.md (names by uid,
// peer_read_seq, page context, customer info).

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
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

// TestWidgetUploadAndReconnect: an image from the widget reaches the desk
// inline; a message written while the widget's connection is down is
// sent once it is back.
func TestWidgetUploadAndReconnect(t *testing.T) {
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
}
