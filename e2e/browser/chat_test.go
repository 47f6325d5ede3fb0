package browser

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// single returns the conversation id of two users' single chat.
func single(a, b imtest.User) string {
	if a.UID < b.UID {
		return fmt.Sprintf("u:%d:%d", a.UID, b.UID)
	}
	return fmt.Sprintf("u:%d:%d", b.UID, a.UID)
}

// post stores a text message over REST as u.
func post(t *testing.T, srv *imtest.Server, u imtest.User, conv, text string) wire.Envelope {
	t.Helper()
	var env wire.Envelope
	srv.MustDo(t, "POST", "/api/v1/conversations/"+conv+"/messages", u.Token,
		map[string]any{"type": "text", "body": text}, http.StatusCreated, &env)
	return env
}

// convItem is the selector of a conversation in the list.
func convItem(conv string) string { return tid("conv-item") + `[data-conv="` + conv + `"]` }

// msgWithText is a JavaScript expression: a message whose body is text.
func msgWithText(text string) string {
	return qa(tid("message")) + ".find(m => m.querySelector('" + tid("message-body") + "')?.textContent === " + jsString(text) + ")"
}

func jsString(s string) string { return fmt.Sprintf("%q", s) }

func TestChatBothWays(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := single(alice, bob)
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pb := b.newPage("bob", srv.URL, Desktop)
	pa.signIn(alice)
	pb.signIn(bob)

	// Bob writes first (over REST, from another device): Alice's list shows
	// the chat with one unread message.
	post(t, srv, bob, conv, "hi alice")
	pa.waitJS("unread 1", q(convItem(conv)+" "+tid("conv-unread"))+"?.textContent === '1'")
	pa.waitJS("last message", q(convItem(conv)+" "+tid("conv-last"))+"?.textContent.includes('hi alice')")

	// Opening it shows the message and clears the badge.
	pa.click(convItem(conv) + " a")
	pa.waitVisible(tid("message-list") + `[data-conv="` + conv + `"]`)
	pa.waitJS("bob's message", msgWithText("hi alice"))
	pa.waitGone(convItem(conv) + " " + tid("conv-unread"))

	// Bob sees that Alice read it.
	pb.click(convItem(conv) + " a")
	pb.waitJS("read by alice", msgWithText("hi alice")+"?.querySelector('"+tid("message-status")+"')?.dataset.state === 'read'")

	// Alice answers with Enter; Bob gets it live.
	pa.typeText(tid("composer"), "hello bob")
	pa.pressEnter()
	pa.waitJS("alice's message sent", "['sent','read'].includes("+msgWithText("hello bob")+"?.querySelector('"+tid("message-status")+"')?.dataset.state)")
	pb.waitJS("alice's answer", msgWithText("hello bob"))
	pa.waitJS("read by bob", msgWithText("hello bob")+"?.querySelector('"+tid("message-status")+"')?.dataset.state === 'read'")

	// Shift+Enter is a new line; the send button sends.
	pb.typeText(tid("composer"), "line one")
	pb.shiftEnter()
	pb.typeText(tid("composer"), "line two")
	pb.click(tid("send"))
	pa.waitJS("two lines", msgWithText("line one\nline two"))
	if got := pa.str(q(tid("composer")) + ".value"); got != "" {
		t.Errorf("alice's composer holds %q", got)
	}
	pa.shot("chat-desktop")
}
