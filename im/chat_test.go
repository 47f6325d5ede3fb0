package im_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

func TestSendSingle(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob := d.user(t, "alice"), d.user(t, "bob")
	conv := topics.SingleConv(alice.UID, bob.UID)

	m1, err := d.Chat.Send(ctx, alice, conv, withCID(text("hello"), "c-1"))
	if err != nil || m1.Seq != 1 || m1.From != alice.UID || m1.Conv != conv {
		t.Fatalf("first message: %+v, %v", m1, err)
	}
	m2, err := d.Chat.PublishTopic(ctx, bob, topics.Inbox(alice.UID), []byte(`{"cid":"c-1","type":"text","body":"hi"}`))
	if err != nil || m2.Seq != 2 || m2.From != bob.UID {
		t.Fatalf("reply over MQTT: %+v, %v", m2, err)
	}
	// Both inboxes get both messages: the sender's copy is its receipt.
	for _, p := range []im.Principal{alice, bob} {
		if got := d.pub.messages(inbox(p)); len(got) != 2 || bodyOf(got[0]) != "hello" || bodyOf(got[1]) != "hi" {
			t.Fatalf("inbox of %s: %v", p.Username, got)
		}
	}
	// The same cid from the same sender is stored once; only the sender
	// hears of it again, with the first copy's id and seq.
	d.pub.reset()
	again, err := d.Chat.Send(ctx, alice, conv, withCID(text("hello, again?"), "c-1"))
	if err != nil || again.ID != m1.ID || again.Seq != 1 {
		t.Fatalf("re-sent: %+v, %v", again, err)
	}
	if len(d.pub.messages(inbox(bob))) != 0 || len(d.pub.messages(inbox(alice))) != 1 {
		t.Fatal("a re-sent message went to the recipient again, or not to its sender")
	}
	// The sender's own message counts as read.
	convs, err := d.Chat.Conversations(ctx, alice)
	if err != nil || len(convs) != 1 {
		t.Fatalf("conversations: %+v, %v", convs, err)
	}
	if c := convs[0]; c.Conv != conv || c.LastSeq != 2 || c.Unread() != 1 || c.LastMessage.Seq != 2 {
		t.Fatalf("alice's summary: %+v", c)
	}
}

func TestSendRefusals(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob, carol := d.user(t, "alice"), d.user(t, "bob"), d.user(t, "carol")
	ab := topics.SingleConv(alice.UID, bob.UID)
	for _, tc := range []struct {
		desc string
		send func() error
		kind error
	}{
		{"to oneself", func() error {
			_, err := d.Chat.PublishTopic(ctx, alice, inbox(alice), []byte(`{"type":"text","body":"me"}`))
			return err
		}, im.ErrInvalid},
		{"to nobody", func() error {
			_, err := d.Chat.PublishTopic(ctx, alice, topics.Inbox(999), []byte(`{"type":"text","body":"?"}`))
			return err
		}, im.ErrNotFound},
		{"a stranger's chat", func() error { _, err := d.Chat.Send(ctx, carol, ab, text("let me in")); return err }, im.ErrForbidden},
		{"not JSON", func() error { _, err := d.Chat.PublishTopic(ctx, alice, inbox(bob), []byte(`hello`)); return err }, im.ErrInvalid},
		{"unknown type", func() error {
			_, err := d.Chat.Send(ctx, alice, ab, wire.Publish{Type: "video", Body: []byte(`"x"`)})
			return err
		}, im.ErrInvalid},
		{"empty text", func() error { _, err := d.Chat.Send(ctx, alice, ab, text("")); return err }, im.ErrInvalid},
		{"text too long", func() error {
			_, err := d.Chat.Send(ctx, alice, ab, text(strings.Repeat("x", wire.MaxTextLen+1)))
			return err
		}, im.ErrTooLarge},
		{"payload too large", func() error {
			_, err := d.Chat.PublishTopic(ctx, alice, inbox(bob), make([]byte, wire.MaxPayload+1))
			return err
		}, im.ErrTooLarge},
		{"cid too long", func() error {
			_, err := d.Chat.Send(ctx, alice, ab, withCID(text("x"), strings.Repeat("c", wire.MaxCIDLen+1)))
			return err
		}, im.ErrInvalid},
		{"javascript: image", func() error {
			_, err := d.Chat.Send(ctx, alice, ab, wire.Publish{Type: wire.TypeImage, Body: []byte(`{"url":"javascript:alert(1)"}`)})
			return err
		}, im.ErrInvalid},
		{"a topic outside the table", func() error {
			_, err := d.Chat.PublishTopic(ctx, alice, "$SYS/broker", []byte(`{"type":"text","body":"x"}`))
			return err
		}, im.ErrForbidden},
		{"a broadcast by a user", func() error { _, err := d.Chat.Broadcast(ctx, alice, "all of you"); return err }, im.ErrForbidden},
		{"a room one is not in", func() error { _, err := d.Chat.Send(ctx, alice, topics.RoomConv(42), text("x")); return err }, im.ErrNotFound},
		{"a bad conversation id", func() error { _, err := d.Chat.Send(ctx, alice, "u:2:1", text("x")); return err }, im.ErrInvalid},
	} {
		t.Run(tc.desc, func(t *testing.T) { refusedAs(t, tc.send(), tc.kind) })
	}
	if got := d.pub.messages(inbox(bob)); len(got) != 0 {
		t.Fatalf("a refused message was delivered: %v", got)
	}
	if h, err := d.Chat.History(ctx, alice, ab, im.HistoryQuery{}); err != nil || len(h) != 0 {
		t.Fatalf("a refused message was stored: %v, %v", h, err)
	}
}

func TestBroadcast(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice := d.user(t, "alice")
	m, err := d.Chat.Broadcast(ctx, d.admin, "maintenance at noon")
	if err != nil || m.Conv != topics.SysConv || m.Seq != 1 {
		t.Fatalf("broadcast: %+v, %v", m, err)
	}
	if got := d.pub.messages(topics.Broadcast); len(got) != 1 || bodyOf(got[0]) != "maintenance at noon" {
		t.Fatalf("delivered: %v", got)
	}
	h, err := d.Chat.History(ctx, alice, topics.SysConv, im.HistoryQuery{})
	if err != nil || len(h) != 1 {
		t.Fatalf("everyone reads sys: %v, %v", h, err)
	}
}

func TestHistoryPages(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob, carol := d.user(t, "alice"), d.user(t, "bob"), d.user(t, "carol")
	conv := topics.SingleConv(alice.UID, bob.UID)
	for i := range 7 {
		if _, err := d.Chat.Send(ctx, alice, conv, text(strings.Repeat("m", i+1))); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func(q im.HistoryQuery) []int64 {
		t.Helper()
		msgs, err := d.Chat.History(ctx, bob, conv, q)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int64, len(msgs))
		for i, m := range msgs {
			out[i] = m.Seq
		}
		return out
	}
	for _, tc := range []struct {
		desc string
		q    im.HistoryQuery
		want string
	}{
		{"the newest page, ascending", im.HistoryQuery{Limit: 3}, "[5 6 7]"},
		{"after_seq=0 starts at the beginning", im.HistoryQuery{After: true, Limit: 3}, "[1 2 3]"},
		{"after a seq", im.HistoryQuery{After: true, AfterSeq: 5}, "[6 7]"},
		{"before a seq: paging upward", im.HistoryQuery{BeforeSeq: 5, Limit: 2}, "[3 4]"},
		{"between", im.HistoryQuery{After: true, AfterSeq: 2, BeforeSeq: 5}, "[3 4]"},
		{"an empty range", im.HistoryQuery{After: true, AfterSeq: 4, BeforeSeq: 5}, "[]"},
		{"after the last", im.HistoryQuery{After: true, AfterSeq: 7}, "[]"},
		{"a limit over the maximum is the maximum", im.HistoryQuery{Limit: 10_000}, "[1 2 3 4 5 6 7]"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			if got := fmt.Sprint(seqs(tc.q)); got != tc.want {
				t.Fatalf("seqs = %s, want %s", got, tc.want)
			}
		})
	}
	_, err := d.Chat.History(ctx, carol, conv, im.HistoryQuery{})
	refusedAs(t, err, im.ErrForbidden)
	_, err = d.Chat.History(ctx, bob, conv, im.HistoryQuery{After: true, AfterSeq: -1})
	refusedAs(t, err, im.ErrInvalid)
	_, err = d.Chat.History(ctx, bob, topics.SingleConv(bob.UID, 999), im.HistoryQuery{})
	refusedAs(t, err, im.ErrNotFound)
}

func TestMarkRead(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob, carol := d.user(t, "alice"), d.user(t, "bob"), d.user(t, "carol")
	conv := topics.SingleConv(alice.UID, bob.UID)
	for range 3 {
		if _, err := d.Chat.Send(ctx, alice, conv, text("x")); err != nil {
			t.Fatal(err)
		}
	}
	d.pub.reset()
	for _, tc := range []struct {
		desc      string
		seq, want int64
		event     bool
	}{
		{"forward", 2, 2, true},
		{"never backward", 1, 2, false},
		{"the same again", 2, 2, false},
		{"clamped to the last seq", 99, 3, true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			before := len(d.pub.events(inbox(alice), wire.EventRead))
			pos, err := d.Chat.MarkRead(ctx, bob, conv, tc.seq)
			if err != nil || pos.ReadSeq != tc.want || pos.LastSeq != 3 || pos.Unread() != 3-tc.want {
				t.Fatalf("MarkRead(%d) = %+v, %v", tc.seq, pos, err)
			}
			evs := d.pub.events(inbox(alice), wire.EventRead)
			if sent := len(evs) > before; sent != tc.event {
				t.Fatalf("read event sent = %v, want %v", sent, tc.event)
			}
			if tc.event && (evs[len(evs)-1]["seq"] != float64(tc.want) || evs[len(evs)-1]["uid"] != float64(bob.UID)) {
				t.Fatalf("read event: %v", evs[len(evs)-1])
			}
		})
	}
	// The reader's own devices hear of each move too.
	if own := d.pub.events(inbox(bob), wire.EventRead); len(own) != 2 || own[1]["uid"] != float64(bob.UID) || own[1]["seq"] != float64(3) {
		t.Fatalf("the reader's own read events: %v", own)
	}
	_, err := d.Chat.MarkRead(ctx, carol, conv, 1)
	refusedAs(t, err, im.ErrForbidden)
	_, err = d.Chat.MarkRead(ctx, bob, conv, -1)
	refusedAs(t, err, im.ErrInvalid)
}
