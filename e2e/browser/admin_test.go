package browser

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
)

// TestAdminShopToWidget: the admin creates a shop at /admin, sets its
// messages, a keyword reply and a canned reply, adds an agent by username;
// the embed line it shows, pasted into a page of another site, gives a
// working chat; the agent answers from the desk. Then broadcasts and
// users: a broadcast reaches the chat page, a disabled user cannot sign in.
func TestAdminShopToWidget(t *testing.T) {
	t.Parallel()
	srv := imtest.Start(t, imtest.Options{})
	eve := person(t, srv, "eve")
	b := newBrowser(t)
	pa := b.newPage("admin", srv.URL, Desktop)
	pa.signInAt("/admin", "admin", imtest.AdminPassword)
	pa.waitJS("connected", q(tid("connection"))+"?.dataset.state === 'online'")

	pa.click(tid("tab-shops"))
	pa.setValue(tid("shop-create-name"), "Tea House")
	pa.click(tid("shop-create-submit"))
	pa.waitJS("the new shop", qa(tid("shop-item"))+".some(e => e.textContent.includes('Tea House'))")
	shop := pa.str(qa(tid("shop-item")) + ".find(e => e.textContent.includes('Tea House')).dataset.shop")
	pa.click(tid("shop-item") + `[data-shop="` + shop + `"]`)
	pa.setValue(tid("shop-welcome"), "Welcome to Tea House!")
	pa.setValue(tid("shop-offline"), "We are brewing; back soon.")
	pa.click(tid("keyword-add"))
	pa.setValue(tid("keyword-item")+` input[aria-label="Keyword"]`, "matcha")
	pa.setValue(tid("keyword-item")+` input[aria-label="Reply"]`, "Our matcha is from Uji.")
	pa.click(tid("shop-save"))
	pa.waitJS("saved", "document.body.textContent.includes('Saved.')")
	var settings struct {
		Welcome  string `json:"welcome_message"`
		Offline  string `json:"offline_message"`
		Keywords []struct {
			Keyword, Reply string
		} `json:"keyword_replies"`
	}
	srv.MustDo(t, "GET", "/api/v1/shops/"+shop, srv.Admin.Token, nil, http.StatusOK, &settings)
	if settings.Welcome != "Welcome to Tea House!" || settings.Offline != "We are brewing; back soon." || len(settings.Keywords) != 1 {
		t.Errorf("the shop's settings after save: %+v", settings)
	}

	pa.setValue(tid("canned-shortcut"), "hi")
	pa.setValue(tid("canned-text"), "Hello! What can I brew for you?")
	pa.click(tid("canned-add"))
	pa.waitVisible(tid("canned-row"))

	pa.setValue(tid("agent-add-username"), eve.Username)
	pa.click(tid("agent-add-submit"))
	pa.waitVisible(tid("agent-item") + `[data-uid="` + strconv.FormatInt(eve.UID, 10) + `"]`)

	snippet := pa.str(q(tid("widget-snippet")) + ".textContent")
	want := fmt.Sprintf(`<script src="%s/widget.js" data-shop="%s" async></script>`, srv.URL, shop)
	if snippet != want {
		t.Errorf("the snippet is %q, want %q", snippet, want)
	}
	pa.click(tid("identity-secret-show"))
	pa.waitJS("the identity secret", q(tid("identity-secret"))+"?.textContent.length >= 16")
	pa.shot("admin-shop")

	// The line, pasted into a page of another site, works.
	host := hostSite(t, snippet)
	c := b.newPage("customer", host, Desktop)
	f := c.openWidget(host)
	f.typeText(tid("composer"), "Do you have matcha?")
	f.pressEnter()
	f.waitJS("welcome", msgWithText("Welcome to Tea House!"))
	f.waitJS("offline", msgWithText("We are brewing; back soon."))
	f.waitJS("keyword reply", msgWithText("Our matcha is from Uji."))
	f.waitJS("queued", q(tid("queue-status"))+"?.dataset.position === '1'")

	// The overview shows the waiting customer.
	pa.waitJS("one waiting", q(tid("shop-item")+`[data-shop="`+shop+`"]`)+"?.textContent.includes('1 waiting')")

	pe := b.newPage("eve desk", srv.URL, Desktop)
	pe.deskSignIn(eve)
	pe.click(tid("session-item") + " a")
	pe.waitJS("the customer's message", msgWithText("Do you have matcha?"))
	pe.typeText(tid("composer"), "/hi")
	pe.click(tid("canned-item"))
	pe.pressEnter()
	f.waitJS("eve's answer", msgWithText("Hello! What can I brew for you?"))
	f.waitJS("eve's name", q(tid("agent-name"))+"?.textContent === "+jsString(eve.Username))
	pa.waitJS("eve's load", q(tid("agent-item")+`[data-uid="`+strconv.FormatInt(eve.UID, 10)+`"]`)+"?.textContent.includes('1 open session')")

	// Broadcasts: sent here, shown in the list and on the chat page.
	pu := b.newPage("frank", srv.URL, Phone)
	frank := person(t, srv, "frank")
	pu.signIn(frank)
	pa.click(tid("tab-broadcasts"))
	pa.setValue(tid("broadcast-text"), "New teas arrive on Monday.")
	pa.click(tid("broadcast-send"))
	pa.waitJS("in the history", q(tid("broadcast-item"))+"?.textContent.includes('New teas arrive on Monday.')")
	pu.waitJS("the banner", q(tid("broadcast"))+"?.textContent.includes('New teas arrive on Monday.')")
	pa.shot("admin-broadcasts")

	// Users: disable frank, who is signed out everywhere and cannot sign in.
	pa.click(tid("tab-users"))
	pa.setValue(tid("user-search"), "fra")
	item := tid("user-item") + `[data-uid="` + strconv.FormatInt(frank.UID, 10) + `"]`
	pa.waitJS("only frank matches 'fra'", qa(tid("user-item"))+".length === 1 && !!"+q(item))
	pa.click(item + " " + tid("user-disable"))
	pa.waitJS("disabled", q(item)+"?.dataset.disabled === 'true'")
	pa.shot("admin-users")
	pu.allow("status of 401", "WebSocket")
	pu.waitVisible(tid("auth-login"))
	if status, body := srv.Do(t, "POST", "/api/v1/auth/login", "", map[string]string{"username": frank.Username, "password": "password1"}); status != http.StatusUnauthorized && status != http.StatusForbidden {
		t.Errorf("a disabled user's login: %d %s", status, body)
	}
	pa.click(item + " " + tid("user-disable"))
	pa.waitJS("enabled", q(item)+"?.dataset.disabled === 'false'")
	srv.Login(t, frank.Username, "password1")
	if strings.Contains(pa.str(q(item)+".textContent"), "disabled") {
		t.Error("the user still shows as disabled")
	}
}
