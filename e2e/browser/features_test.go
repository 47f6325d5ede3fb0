package browser

// Tests of the client side of PROTOCOL §6–7 (users lookup, public rooms,
// presence, typing, uploads). They need those server features.

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/imserver/imserver/internal/imtest"
)

// startChat opens the single chat with a user through new-chat-username.
func (p *Page) startChat(with imtest.User, me imtest.User) string {
	p.t.Helper()
	conv := single(me, with)
	p.setValue(tid("new-chat-username"), with.Username)
	p.click(tid("new-chat-start"))
	p.waitVisible(tid("message-list") + `[data-conv="` + conv + `"]`)
	return conv
}

func TestStartChatByUsername(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pb := b.newPage("bob", srv.URL, Desktop)
	pa.signIn(alice)
	pb.signIn(bob)
	conv := pa.startChat(bob, alice)
	if got := pa.str(q(convItem(conv)+" "+tid("conv-title")) + "?.textContent"); got != bob.Username {
		t.Errorf("the chat is titled %q, want %q", got, bob.Username)
	}
	pa.typeText(tid("composer"), "found you")
	pa.pressEnter()
	pb.waitJS("bob's list", q(convItem(conv)+" "+tid("conv-unread"))+"?.textContent === '1'")
	pb.click(convItem(conv) + " a")
	pb.waitJS("the message", msgWithText("found you"))
	pa.waitJS("read", msgWithText("found you")+"?.querySelector('"+tid("message-status")+"')?.dataset.state === 'read'")

	// Nobody of that name: an error, no chat.
	pa.setValue(tid("new-chat-username"), "nobody_here")
	pa.click(tid("new-chat-start"))
	pa.waitJS("error", "document.body.textContent.includes('nobody_here')")
}

func TestTypingAndPresence(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pb := b.newPage("bob", srv.URL, Desktop)
	pa.signIn(alice)
	pb.signIn(bob)
	conv := pa.startChat(bob, alice)
	pa.typeText(tid("composer"), "are you there?")
	pa.pressEnter()
	pb.click(convItem(conv) + " a")
	pb.waitJS("message", msgWithText("are you there?"))

	pa.waitJS("bob online", q(tid("presence"))+"?.dataset.online === 'true'")
	pb.typeText(tid("composer"), "typing something")
	pa.waitJS("typing shown", q(tid("typing"))+"?.textContent.includes("+jsString(bob.Username)+")")
	pa.shot("typing-desktop")
	pa.waitGone(tid("typing")) // shown for 5 seconds

	// Bob closes the page: he goes offline.
	pb.close()
	pa.waitJS("bob offline", q(tid("presence"))+"?.dataset.online === 'false'")
}

func writePNG(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(60 + x*3), uint8(90 + y*2), 230, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// upload chooses a file in the attach input.
func (p *Page) upload(path string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(tid("attach")), []string{path})); err != nil {
		p.t.Fatalf("%s: choose %s: %v", p.name, path, err)
	}
}

func TestUploads(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	conv := single(alice, bob)
	post(t, srv, bob, conv, "send me the picture")
	dir := t.TempDir()
	pic := filepath.Join(dir, "sunset.png")
	writePNG(t, pic, 64, 48)
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("just some notes\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	pa := b.newPage("alice", srv.URL, Desktop)
	pb := b.newPage("bob", srv.URL, Desktop)
	pa.signIn(alice)
	pb.signIn(bob)
	pa.click(convItem(conv) + " a")
	pb.click(convItem(conv) + " a")

	pa.upload(pic)
	img := q(tid("message") + "[data-seq] " + tid("message-body") + " img")
	pb.waitJS("the image, loaded", img+"?.complete && "+img+".naturalWidth === 64")
	pa.waitJS("the image on the sender's side", img+"?.naturalHeight === 48")
	pa.upload(notes)
	link := qa(tid("message")+"[data-seq] "+tid("message-body")+" a") + ".find(a => a.textContent === 'notes.txt')"
	pb.waitJS("the file link", link+"?.href.startsWith('http')")
	href := pb.str(link + ".href")
	resp, err := http.Get(href)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", href, resp.StatusCode)
	}
	pb.shot("image-desktop")
}

func TestRoomSearchAndJoin(t *testing.T) {
	srv := imtest.Start(t, imtest.Options{})
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	var room struct {
		RoomID int64 `json:"room_id"`
	}
	srv.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "Book club"}, http.StatusCreated, &room)
	srv.MustDo(t, "POST", "/api/v1/rooms", alice.Token, map[string]any{"name": "Secret books", "private": true}, http.StatusCreated, nil)
	conv := "r:" + strconv.FormatInt(room.RoomID, 10)

	b := newBrowser(t)
	pb := b.newPage("bob", srv.URL, Phone)
	pb.signIn(bob)
	if !pb.visibleNow(tid("room-search")) {
		pb.click(tid("rooms-open"))
	}
	pb.typeText(tid("room-search"), "book")
	result := tid("room-result") + `[data-room="` + strconv.FormatInt(room.RoomID, 10) + `"]`
	pb.waitVisible(result)
	if n := pb.str(qa(tid("room-result")) + ".length"); n != "1" {
		t.Errorf("%s results, want only the public room", n)
	}
	pb.shot("rooms-phone")
	pb.click(result + " " + tid("room-join"))
	pb.waitVisible(tid("message-list") + `[data-conv="` + conv + `"]`)
	post(t, srv, alice, conv, fmt.Sprintf("welcome, %s", bob.Username))
	pb.waitJS("live in the joined room", msgWithText("welcome, "+bob.Username))
}
