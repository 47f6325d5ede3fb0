package im

import (
	"context"
	"log/slog"
	"testing"

	"github.com/imserver/imserver/topics"
)

func TestMayReceive(t *testing.T) {
	c, err := loadRoomCache(context.Background(), &membershipStore{rooms: map[int64][]int64{5: {10, 11}, 6: {12}}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s := &Service{Rooms: &Rooms{cache: c}}
	alice := Principal{UID: 10}
	for _, tc := range []struct {
		topic string
		want  bool
	}{
		{topics.Inbox(10), true},
		{topics.Inbox(11), false},
		{topics.Broadcast, true},
		{topics.Room(5), true},
		{topics.Room(6), false},
		{topics.Room(7), false},
		{"im/r/05", false}, // not the canonical spelling
		{"im/r/+5", false},
		{"im/r/5/x", false},
		{"im/r/", false},
		{"im/u/10/x", false},
		{"im/r/#", false},
		{"im/#", false},
		{"#", false},
		{"$SYS/broker/clients", false},
		{topics.Shop(1), false},
		{topics.ShopReply(1, 10), false},
		{"", false},
	} {
		if got := s.MayReceive(alice, tc.topic); got != tc.want {
			t.Errorf("MayReceive(%q) = %v, want %v", tc.topic, got, tc.want)
		}
	}
}

// BenchmarkMayReceive measures the domain's part of a room delivery: the
// broker asks it for every member of the room, one after another.
//
//	go test ./im -run '^$' -bench MayReceive
func BenchmarkMayReceive(b *testing.B) {
	const members = 1000
	m := &membershipStore{rooms: map[int64][]int64{5: nil}}
	for u := range int64(members) {
		m.rooms[5] = append(m.rooms[5], u+1)
	}
	c, err := loadRoomCache(context.Background(), m, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	s := &Service{Rooms: &Rooms{cache: c}}
	topic := topics.Room(5)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := int64(0); pb.Next(); i++ {
			if !s.MayReceive(Principal{UID: i%members + 1}, topic) {
				b.Fatal("refused")
			}
		}
	})
}
