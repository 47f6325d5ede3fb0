package browser

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
)

// TestMeasureLongConversation is a measurement, not a test: it fills a
// single chat with 10,000 messages and reports how long the chat app
// takes to show the newest page of it, from the click on the conversation
// to the newest message on screen, and from the sign-in page to the list.
// It asserts nothing on time, and runs only when asked:
//
//	IM_MEASURE=1 go test ./e2e/browser -run TestMeasureLongConversation -v
func TestMeasureLongConversation(t *testing.T) {
	if os.Getenv("IM_MEASURE") == "" {
		t.Skip("a measurement: IM_MEASURE=1 to run it")
	}
	const n = 10_000
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := person(t, srv, "alice"), person(t, srv, "bob")
	conv := single(alice, bob)

	start := time.Now()
	c := srv.Connect(t, alice, imtest.ClientOptions{})
	sem := make(chan struct{}, 64)
	for i := 1; i <= n; i++ {
		sem <- struct{}{}
		tok := c.Paho.Publish(fmt.Sprintf("im/u/%d", bob.UID), 1, false, fmt.Sprintf(`{"cid":"m%d","type":"text","body":"message %d"}`, i, i))
		go func() {
			tok.WaitTimeout(30 * time.Second)
			<-sem
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	t.Logf("%d messages stored in %v", n, time.Since(start).Round(time.Millisecond))

	b := newBrowser(t)
	p := b.newPage("bob", srv.URL, Desktop)
	p.open("/")
	p.setValue(tid("auth-username"), bob.Username)
	p.setValue(tid("auth-password"), "password1")
	signIn := time.Now()
	p.click(tid("auth-login"))
	p.waitVisible(convItem(conv))
	listed := time.Since(signIn)

	open := time.Now()
	p.click(convItem(conv) + " a")
	p.waitJS("the newest message", msgWithText(fmt.Sprintf("message %d", n)))
	shown := time.Since(open)
	rendered := p.str("String(" + qa(tid("message")) + ".length)")
	t.Logf("sign-in to the conversation list: %v", listed.Round(time.Millisecond))
	t.Logf("click to the newest of %d messages on screen: %v (%s messages rendered)", n, shown.Round(time.Millisecond), rendered)
}
