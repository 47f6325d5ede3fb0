package browser

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// person registers a user with exactly this name.
func person(t *testing.T, srv *imtest.Server, name string) imtest.User {
	t.Helper()
	srv.MustDo(t, "POST", "/api/v1/auth/register", "", wire.Credentials{Username: name, Password: "password1"}, http.StatusCreated, nil)
	return srv.Login(t, name, "password1")
}

func postBody(t *testing.T, srv *imtest.Server, u imtest.User, conv, typ string, body any) {
	t.Helper()
	srv.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", u.Token, map[string]any{"type": typ, "body": body}, http.StatusCreated, nil)
}

// TestScreens drives the main screens at desktop and phone sizes and saves
// screenshots (into docs/screenshots with IM_SCREENSHOTS=1). It checks the
// layouts: side by side on a desktop, one pane at a time with a back button
// on a phone.
func TestScreens(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob, carol := person(t, srv, "alice"), person(t, srv, "bob"), person(t, srv, "carol")
	var room struct {
		RoomID int64 `json:"room_id"`
	}
	srv.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "Design team"}, http.StatusCreated, &room)
	rconv := fmt.Sprintf("r:%d", room.RoomID)
	for _, u := range []imtest.User{bob, carol} {
		srv.MustDo(t, "POST", fmt.Sprintf("/api/v1/rooms/%d/join", room.RoomID), u.Token, nil, http.StatusOK, nil)
	}
	post(t, srv, alice, rconv, "Morning all! The new onboarding flow is ready for review.")
	post(t, srv, bob, rconv, "Nice, I'll take a look after standup.")
	post(t, srv, carol, rconv, "Left a few comments on the empty states.")
	conv := single(alice, bob)
	post(t, srv, bob, conv, "Hey Alice, are we still on for lunch?")
	post(t, srv, alice, conv, "Yes! 12:30 at the usual place?")
	post(t, srv, bob, conv, "Perfect. I'll book a table.")
	postBody(t, srv, bob, conv, "image", map[string]any{"url": srv.URL + "/app/icon.svg", "width": 160, "height": 160})
	postBody(t, srv, alice, conv, "file", map[string]any{"url": srv.URL + "/sdk/imclient.js", "name": "quarterly-report.pdf", "size": 248000})
	post(t, srv, alice, conv, "Here's the report we talked about.\nPage 4 has the numbers.")
	srv.MustDo(t, "POST", "/api/v1/broadcasts", srv.Admin.Token, map[string]string{"text": "Scheduled maintenance on Sunday 02:00–03:00 UTC."}, http.StatusCreated, nil)
	cconv := single(alice, carol)
	post(t, srv, carol, cconv, "Can you send me the slides?")
	post(t, srv, carol, cconv, "The ones from Tuesday, please.")

	b := newBrowser(t)
	pd := b.newPage("alice desktop", srv.URL, Desktop)
	pd.open("/")
	pd.waitVisible(tid("auth-login"))
	pd.shot("signin-desktop")
	pd.signIn(alice)
	pd.waitJS("names known", q(convItem(conv)+" "+tid("conv-title"))+"?.textContent === 'bob'")
	pd.click(convItem(conv) + " a")
	pd.waitJS("the chat", msgWithText("Here's the report we talked about.\nPage 4 has the numbers."))
	pd.waitJS("the image", q(tid("message-body")+" img")+"?.complete")
	if !pd.visibleNow(tid("conv-list")) {
		t.Error("desktop: the list is hidden next to an open chat")
	}
	pd.shot("chat-desktop")
	pd.click(convItem(rconv) + " a")
	pd.waitJS("room messages", msgWithText("Left a few comments on the empty states."))
	pd.click(tid("rooms-open"))
	pd.waitJS("members", qa(tid("room-member"))+".length === 3")
	pd.shot("room-desktop")

	pp := b.newPage("alice phone", srv.URL, Phone)
	pp.signIn(alice)
	pp.waitJS("names known", q(convItem(conv)+" "+tid("conv-title"))+"?.textContent === 'bob'")
	pp.waitJS("unread from carol", q(convItem(cconv)+" "+tid("conv-unread"))+"?.textContent === '2'")
	pp.shot("list-phone")
	pp.click(convItem(conv) + " a")
	pp.waitJS("the chat", msgWithText("Perfect. I'll book a table."))
	if pp.visibleNow(tid("conv-list")) {
		t.Error("phone: the list is shown next to the chat")
	}
	pp.waitJS("the image", q(tid("message-body")+" img")+"?.complete")
	pp.shot("chat-phone")
	pp.click(`a[aria-label="Back to conversations"]`)
	pp.waitVisible(tid("conv-list"))
	pp.click(convItem(rconv) + " a")
	pp.click(tid("rooms-open"))
	pp.waitJS("members", qa(tid("room-member"))+".length === 3")
	pp.shot("room-panel-phone")
}
