package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/internal/pgtest"
	"github.com/imserver/imserver/store"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// forEachStore runs fn against a fresh SQLite file and a fresh PostgreSQL
// schema.
func forEachStore(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, "sqlite:"+filepath.Join(t.TempDir(), "im.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, pgtest.URL(t)))
	})
}

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustUser(t *testing.T, s *store.Store, name string) im.User {
	t.Helper()
	u, err := s.CreateUser(context.Background(), im.User{Username: name, PasswordHash: "h", Role: im.RoleUser, Status: im.StatusOnline, CreatedAt: 1})
	if err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return u
}

func msg(conv string, from int64, cid string, i int) im.Message {
	return im.Message{ID: fmt.Sprintf("%s-%d-%s-%d", conv, from, cid, i), Conv: conv, From: from, Type: "text", Body: []byte(`"hi"`), CID: cid, TS: int64(1000 + i)}
}

func TestUsers(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		alice := mustUser(t, s, "Alice")
		if alice.UID == 0 {
			t.Fatal("no uid assigned")
		}
		if _, err := s.CreateUser(ctx, im.User{Username: "alice", PasswordHash: "h", Role: im.RoleUser, Status: im.StatusOnline}); !errors.Is(err, im.ErrConflict) {
			t.Fatalf("duplicate username (other case): err = %v, want ErrConflict", err)
		}
		got, err := s.UserByName(ctx, "ALICE")
		if err != nil || got.UID != alice.UID || got.Username != "Alice" {
			t.Fatalf("UserByName = %+v, %v", got, err)
		}
		if _, err := s.UserByID(ctx, alice.UID+100); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown uid: err = %v, want ErrNotFound", err)
		}
		if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, im.ErrNotFound) {
			t.Fatalf("unknown name: err = %v, want ErrNotFound", err)
		}
	})
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "im.db")
	open(t, path).Close()
	s := open(t, path)
	mustUser(t, s, "bob")
}

func TestAppendAssignsContiguousSeqsAndDedups(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
		conv := fmt.Sprintf("u:%d:%d", a.UID, b.UID)
		for i := 1; i <= 3; i++ {
			m, dup, err := s.AppendMessage(ctx, msg(conv, a.UID, fmt.Sprint("c", i), i))
			if err != nil || dup || m.Seq != int64(i) {
				t.Fatalf("append %d: seq %d dup %v err %v", i, m.Seq, dup, err)
			}
		}
		again := msg(conv, a.UID, "c2", 99)
		m, dup, err := s.AppendMessage(ctx, again)
		if err != nil || !dup || m.Seq != 2 || m.ID != msg(conv, a.UID, "c2", 2).ID {
			t.Fatalf("duplicate cid: got %+v dup %v err %v, want the stored seq 2", m, dup, err)
		}
		// The same cid from the other user is a different message.
		m, dup, err = s.AppendMessage(ctx, msg(conv, b.UID, "c2", 4))
		if err != nil || dup || m.Seq != 4 {
			t.Fatalf("same cid other sender: seq %d dup %v err %v", m.Seq, dup, err)
		}
		hist, err := s.History(ctx, conv, im.HistoryQuery{Limit: 50})
		if err != nil || len(hist) != 4 {
			t.Fatalf("history: %d messages, %v", len(hist), err)
		}
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("history[%d].Seq = %d", i, m.Seq)
			}
		}
		if string(hist[0].Body) != `"hi"` || hist[0].CID != "c1" || hist[0].TS != 1001 {
			t.Fatalf("stored message changed: %+v", hist[0])
		}
	})
}

func TestConcurrentAppends(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
		conv := fmt.Sprintf("u:%d:%d", a.UID, b.UID)
		const workers, each = 8, 20
		var wg sync.WaitGroup
		errs := make(chan error, workers*each*2)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					// Every message is sent twice with the same cid, by two goroutines.
					cid := fmt.Sprintf("w%d-%d", w%4, i)
					if _, _, err := s.AppendMessage(ctx, msg(conv, a.UID, cid, w*1000+i)); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		hist, err := s.History(ctx, conv, im.HistoryQuery{After: true, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if want := 4 * each; len(hist) != want {
			t.Fatalf("stored %d messages, want %d (one per cid)", len(hist), want)
		}
		seen := map[string]bool{}
		for i, m := range hist {
			if m.Seq != int64(i+1) {
				t.Fatalf("seq %d at position %d: not contiguous", m.Seq, i)
			}
			if seen[m.CID] {
				t.Fatalf("cid %s stored twice", m.CID)
			}
			seen[m.CID] = true
		}
	})
}

func TestHistoryPages(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b := mustUser(t, s, "alice"), mustUser(t, s, "bob")
		conv := fmt.Sprintf("u:%d:%d", a.UID, b.UID)
		for i := 1; i <= 10; i++ {
			if _, _, err := s.AppendMessage(ctx, msg(conv, a.UID, "", i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name string
			q    im.HistoryQuery
			want []int64
		}{
			{"newest", im.HistoryQuery{Limit: 3}, []int64{8, 9, 10}},
			{"from the start", im.HistoryQuery{After: true, Limit: 3}, []int64{1, 2, 3}},
			{"after", im.HistoryQuery{After: true, AfterSeq: 4, Limit: 3}, []int64{5, 6, 7}},
			{"before", im.HistoryQuery{BeforeSeq: 4, Limit: 2}, []int64{2, 3}},
			{"between", im.HistoryQuery{After: true, AfterSeq: 2, BeforeSeq: 6, Limit: 50}, []int64{3, 4, 5}},
			{"after the end", im.HistoryQuery{After: true, AfterSeq: 10, Limit: 5}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.History(ctx, conv, tc.q)
				if err != nil {
					t.Fatal(err)
				}
				var seqs []int64
				for _, m := range got {
					seqs = append(seqs, m.Seq)
				}
				if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
					t.Fatalf("seqs = %v, want %v", seqs, tc.want)
				}
			})
		}
		if got, err := s.History(ctx, "u:998:999", im.HistoryQuery{Limit: 5}); err != nil || len(got) != 0 {
			t.Fatalf("unknown conversation: %v, %v", got, err)
		}
	})
}

func TestConversationsAndReadPositions(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		a, b, c := mustUser(t, s, "alice"), mustUser(t, s, "bob"), mustUser(t, s, "carol")
		ab := fmt.Sprintf("u:%d:%d", a.UID, b.UID)
		ac := fmt.Sprintf("u:%d:%d", a.UID, c.UID)
		for i := 1; i <= 3; i++ {
			if _, _, err := s.AppendMessage(ctx, msg(ab, a.UID, "", i)); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.AppendMessage(ctx, msg(ac, c.UID, "", 10)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.AppendMessage(ctx, im.Message{ID: "sys-1", Conv: "sys", From: 0, Type: "text", Body: []byte(`"hello all"`), TS: 5}); err != nil {
			t.Fatal(err)
		}
		convs, err := s.Conversations(ctx, a.UID)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]im.ConversationSummary{}
		var order []string
		for _, cv := range convs {
			got[cv.Conv] = cv
			order = append(order, cv.Conv)
		}
		if len(convs) != 3 || order[0] != ac {
			t.Fatalf("alice's conversations = %v, want 3 with %s first", order, ac)
		}
		if cv := got[ab]; cv.LastSeq != 3 || cv.ReadSeq != 3 || cv.LastMessage == nil || cv.LastMessage.Seq != 3 {
			t.Fatalf("sender's own messages count as read: %+v", cv)
		}
		if cv := got[ac]; cv.LastSeq != 1 || cv.ReadSeq != 0 || cv.Kind != "single" {
			t.Fatalf("received message is unread: %+v", cv)
		}
		if cv := got["sys"]; cv.Kind != "sys" || cv.LastMessage == nil || cv.LastMessage.From != 0 {
			t.Fatalf("sys conversation: %+v", cv)
		}
		bobs, err := s.Conversations(ctx, b.UID)
		if err != nil || len(bobs) != 2 {
			t.Fatalf("bob's conversations: %+v, %v", bobs, err)
		}

		// Read positions clamp to last_seq and never go down.
		for _, tc := range []struct {
			seq, want int64
			moved     bool
		}{{2, 2, true}, {1, 2, false}, {2, 2, false}, {99, 3, true}} {
			pos, moved, err := s.MarkRead(ctx, ab, b.UID, tc.seq)
			read, last := pos.ReadSeq, pos.LastSeq
			if err != nil || read != tc.want || last != 3 || moved != tc.moved {
				t.Fatalf("MarkRead(%d) = %d, %d, %v, %v; want %d, 3, %v", tc.seq, read, last, moved, err, tc.want, tc.moved)
			}
		}
		if pos, moved, err := s.MarkRead(ctx, "u:998:999", b.UID, 5); err != nil || pos.ReadSeq != 0 || pos.LastSeq != 0 || moved {
			t.Fatalf("MarkRead on an empty conversation = %+v %v %v", pos, moved, err)
		}
	})
}

func TestSettingOrInit(t *testing.T) {
	forEachStore(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		v, err := s.SettingOrInit(ctx, "k", "first")
		if err != nil || v != "first" {
			t.Fatalf("%q %v", v, err)
		}
		if v, err = s.SettingOrInit(ctx, "k", "second"); err != nil || v != "first" {
			t.Fatalf("second init overwrote: %q %v", v, err)
		}
	})
}
