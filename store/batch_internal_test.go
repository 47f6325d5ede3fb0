package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/internal/pgtest"
)

// A group of messages and jobs in one transaction: a job that rolls back
// or fails undoes its own work and nothing else's, whether the group ran
// without savepoints first or not; the answers keep the queue's order.
func TestGroupJobsUndoOnlyTheirOwnWork(t *testing.T) {
	forEachEngine(t, testGroupJobs)
}

// forEachEngine runs fn against a fresh store on SQLite and on
// PostgreSQL; url reopens it.
func forEachEngine(t *testing.T, fn func(t *testing.T, s *Store, url string)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			url := "sqlite:" + filepath.Join(t.TempDir(), "im.db")
			if engine == "postgres" {
				url = pgtest.URL(t)
			}
			s, err := Open(context.Background(), url, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			fn(t, s, url)
		})
	}
}

func testGroupJobs(t *testing.T, s *Store, url string) {
	ctx := context.Background()
	var uids []int64
	for _, name := range []string{"alice", "bob"} {
		u, err := s.CreateUser(ctx, im.User{Username: name, PasswordHash: "h", Role: im.RoleUser, Status: im.StatusOnline, CreatedAt: 1})
		if err != nil {
			t.Fatal(err)
		}
		uids = append(uids, u.UID)
	}
	conv := fmt.Sprintf("u:%d:%d", uids[0], uids[1])
	n := 0
	message := func(text string) im.Message {
		n++
		return im.Message{ID: fmt.Sprintf("m%d", n), Conv: conv, From: uids[0], Type: "text", Body: []byte(`"` + text + `"`), CID: text, TS: int64(n)}
	}
	var order []string
	var answers = map[string]error{}
	msgReq := func(text string) *appendReq {
		return &appendReq{m: message(text), done: func(m im.Message, dup bool, err error) {
			order = append(order, text)
			answers[text] = err
		}}
	}
	refused := errors.New("refused")
	runs := map[string]int{}
	jobReq := func(text string, end im.TxEnd, err error) *appendReq {
		m := message(text)
		return &appendReq{
			job: func(ctx context.Context, tx *sqlx.Tx) (im.TxEnd, error) {
				runs[text]++
				if _, _, err := s.appendTx(ctx, tx, m); err != nil {
					return im.Rollback, err
				}
				return end, err
			},
			after: func(err error) {
				order = append(order, text)
				answers[text] = err
			},
		}
	}
	group := []*appendReq{
		msgReq("one"),
		jobReq("kept", im.Commit, nil),
		jobReq("rolled-back", im.Rollback, nil),
		msgReq("two"),
		jobReq("failed", im.Rollback, refused),
		jobReq("kept-too", im.Commit, nil),
		msgReq("three"),
	}
	s.appender.run(group)
	s.Close() // the answers are all given once the store is closed

	want := []string{"one", "kept", "rolled-back", "two", "failed", "kept-too", "three"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("answers in order %v, want %v", order, want)
	}
	for text, err := range answers {
		if text == "failed" {
			if !errors.Is(err, refused) {
				t.Errorf("failed job answered %v, want its error", err)
			}
		} else if err != nil {
			t.Errorf("%s answered %v", text, err)
		}
	}
	if runs["kept"] < 1 || runs["rolled-back"] < 1 {
		t.Fatalf("jobs ran %v", runs)
	}

	// Reopen and read what was stored: the kept writes, in the group's
	// order, with contiguous seqs.
	s2, err := Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, want := cids(history(t, s2, conv)), "[one kept two kept-too three]"; got != want {
		t.Fatalf("stored %v, want %v", got, want)
	}
}
