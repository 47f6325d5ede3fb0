package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/imserver/imserver/im"
)

// newUser creates an online user and returns its uid.
func newUser(t *testing.T, s *Store, name string) int64 {
	t.Helper()
	u, err := s.CreateUser(context.Background(), im.User{Username: name, PasswordHash: "h", Role: im.RoleUser, Status: im.StatusOnline, CreatedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	return u.UID
}

// newShop creates a shop with these agents.
func newShop(t *testing.T, s *Store, agents ...int64) im.Shop {
	t.Helper()
	ctx := context.Background()
	shop, err := s.CreateShop(ctx, im.Shop{Name: "Shop", CreatedAt: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range agents {
		if err := s.AddAgent(ctx, shop.ID, a, 1); err != nil {
			t.Fatal(err)
		}
	}
	return shop
}

// history reads conv's messages from s and checks that their seqs run
// from 1 without a gap.
func history(t *testing.T, s *Store, conv string) []im.Message {
	t.Helper()
	hist, err := s.History(context.Background(), conv, im.HistoryQuery{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range hist {
		if m.Seq != int64(i+1) {
			t.Errorf("%s: message %s has seq %d, want %d", conv, m.CID, m.Seq, i+1)
		}
	}
	return hist
}

// cids lists the messages' cids, as text.
func cids(ms []im.Message) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.CID
	}
	return fmt.Sprint(out)
}
