package im_test

import (
	"context"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

func TestPresenceSubscribe(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob, carol, dave := d.user(t, "alice"), d.user(t, "bob"), d.user(t, "carol"), d.user(t, "dave")
	agent, cust := d.user(t, "agent"), d.user(t, "cust")

	// Who may follow whom: oneself; a single chat once it has a message; a
	// room; a service conversation (the customer and the shop's agents).
	if _, err := d.Chat.Send(ctx, alice, topics.SingleConv(alice.UID, bob.UID), text("hi")); err != nil {
		t.Fatal(err)
	}
	room, err := d.Rooms.Create(ctx, carol, "club", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Rooms.Join(ctx, dave, room.ID); err != nil {
		t.Fatal(err)
	}
	shop := d.shopWith(t, agent)
	d.ask(t, cust, shop, "hello")
	for _, tc := range []struct {
		desc    string
		p       im.Principal
		of      int64
		allowed bool
	}{
		{"oneself", alice, alice.UID, true},
		{"a single chat", bob, alice.UID, true},
		{"the other way", alice, bob.UID, true},
		{"a room", dave, carol.UID, true},
		{"the customer follows the agent", cust, agent.UID, true},
		{"the agent follows the customer", agent, cust.UID, true},
		{"a stranger", carol, alice.UID, false},
		{"no messages yet", alice, dave.UID, false},
		{"nobody", alice, 999, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			err := d.Presence.Subscribe(ctx, tc.p, tc.of)
			if tc.allowed && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allowed {
				refusedAs(t, err, im.ErrForbidden)
			}
		})
	}
	// The state is retained for the new subscriber.
	if ev := d.pub.retainedOn(topics.Presence(alice.UID)); ev["event"] != wire.EventPresence || ev["online"] != false || ev["status"] != "online" {
		t.Fatalf("retained state: %v", ev)
	}
}

func TestPresenceChanges(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice := d.user(t, "alice")
	topic := topics.Presence(alice.UID)

	d.live.set(alice.UID, true)
	d.UserOnline(alice.UID)
	eventually(t, "online", func() bool { return len(d.pub.on(topic)) == 1 })
	if ev := d.pub.on(topic)[0]; ev["online"] != true || ev["last_seen"] != float64(0) {
		t.Fatalf("online event: %v", ev)
	}
	if err := d.Support.SetStatus(ctx, alice, im.StatusAway); err != nil {
		t.Fatal(err)
	}
	eventually(t, "away", func() bool { return len(d.pub.on(topic)) == 2 })
	if ev := d.pub.on(topic)[1]; ev["status"] != "away" || ev["online"] != true {
		t.Fatalf("away event: %v", ev)
	}
	d.live.set(alice.UID, false)
	d.UserOffline(alice.UID)
	eventually(t, "offline", func() bool { return len(d.pub.on(topic)) == 3 })
	off := d.pub.on(topic)[2]
	if off["online"] != false || off["last_seen"].(float64) <= 0 {
		t.Fatalf("offline event: %v", off)
	}
	// last_seen is kept: a later subscriber gets it.
	u, err := d.Accounts.User(ctx, alice.UID)
	if err != nil || float64(u.LastSeen) != off["last_seen"] {
		t.Fatalf("last_seen stored %d, event %v, %v", u.LastSeen, off["last_seen"], err)
	}
	if r := d.pub.retainedOn(topic); r["last_seen"] != off["last_seen"] {
		t.Fatalf("retained %v", r)
	}
}

func TestTyping(t *testing.T) {
	d := newDomain(t)
	ctx := context.Background()
	alice, bob, carol := d.user(t, "alice"), d.user(t, "bob"), d.user(t, "carol")
	agent, cust := d.user(t, "agent"), d.user(t, "cust")
	conv := topics.SingleConv(alice.UID, bob.UID)
	typing := func(p im.Principal, conv string) error {
		_, err := d.Chat.PublishTopic(ctx, p, topics.Typing, []byte(`{"conv":"`+conv+`"}`))
		return err
	}

	if err := typing(alice, conv); err != nil {
		t.Fatal(err)
	}
	if err := typing(alice, conv); err != nil { // within a second: dropped silently
		t.Fatal(err)
	}
	ev := d.pub.events(inbox(bob), wire.EventTyping)
	if len(ev) != 1 || ev[0]["conv"] != conv || ev[0]["uid"] != float64(alice.UID) {
		t.Fatalf("typing events: %v", ev)
	}
	if len(d.pub.on(inbox(alice))) != 0 {
		t.Fatal("the typist was told of its own typing")
	}
	refusedAs(t, typing(carol, conv), im.ErrForbidden)
	refusedAs(t, typing(alice, "u:9:1"), im.ErrInvalid)
	refusedAs(t, typing(alice, topics.SysConv), im.ErrForbidden)
	_, err := d.Chat.PublishTopic(ctx, alice, topics.Typing, []byte(`typing!`))
	refusedAs(t, err, im.ErrInvalid)

	// Rooms: on the room topic.
	room, err := d.Rooms.Create(ctx, carol, "club", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := typing(carol, topics.RoomConv(room.ID)); err != nil {
		t.Fatal(err)
	}
	if ev := d.pub.events(topics.Room(room.ID), wire.EventTyping); len(ev) != 1 {
		t.Fatalf("room typing: %v", ev)
	}
	refusedAs(t, typing(alice, topics.RoomConv(room.ID)), im.ErrForbidden)

	// Service: the customer's typing goes to the ticket's agent, and back.
	shop := d.shopWith(t, agent)
	d.live.set(agent.UID, true)
	d.ask(t, cust, shop, "hello")
	sconv := topics.ServiceConv(shop.ID, cust.UID)
	if err := typing(cust, sconv); err != nil {
		t.Fatal(err)
	}
	if err := typing(agent, sconv); err != nil {
		t.Fatal(err)
	}
	if len(d.pub.events(inbox(agent), wire.EventTyping)) != 1 || len(d.pub.events(inbox(cust), wire.EventTyping)) != 1 {
		t.Fatal("service typing did not cross")
	}
	// Nothing was stored.
	if h, _ := d.Chat.History(ctx, alice, conv, im.HistoryQuery{}); len(h) != 0 {
		t.Fatalf("typing stored: %v", h)
	}
}
