package im_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/store"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// The domain's unit tests run it on a real SQLite store in a temporary
// directory, with a publisher that records deliveries and a Live whose
// connections the test sets, so that a failure points at one rule.

// published is one delivery.
type published struct {
	topic   string
	payload map[string]any
}

// recorder is an im.Publisher that keeps every delivery and the retained
// messages.
type recorder struct {
	mu       sync.Mutex
	sent     []published
	retained map[string]map[string]any
}

func (r *recorder) Retain(topic string, payload []byte) {
	var v map[string]any
	_ = json.Unmarshal(payload, &v)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retained == nil {
		r.retained = map[string]map[string]any{}
	}
	r.retained[topic] = v
}

func (r *recorder) retainedOn(topic string) map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.retained[topic]
}

func (r *recorder) Publish(topic string, payload []byte) error {
	var v map[string]any
	if err := json.Unmarshal(payload, &v); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, published{topic, v})
	return nil
}

// on returns what was delivered to topic, in order.
func (r *recorder) on(topic string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, p := range r.sent {
		if p.topic == topic {
			out = append(out, p.payload)
		}
	}
	return out
}

// events returns the events named name delivered to topic.
func (r *recorder) events(topic, name string) []map[string]any {
	var out []map[string]any
	for _, v := range r.on(topic) {
		if v["event"] == name {
			out = append(out, v)
		}
	}
	return out
}

// messages returns the message envelopes delivered to topic.
func (r *recorder) messages(topic string) []map[string]any {
	var out []map[string]any
	for _, v := range r.on(topic) {
		if v["event"] == nil {
			out = append(out, v)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = nil
}

// live is an im.Live whose reachable users the test sets.
type live struct {
	mu        sync.Mutex
	reachable map[int64]bool
	dropped   []string
}

func (l *live) set(uid int64, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reachable == nil {
		l.reachable = map[int64]bool{}
	}
	l.reachable[uid] = on
}

func (l *live) Online(uid int64) bool    { return l.Reachable(uid) }
func (l *live) Reachable(uid int64) bool { l.mu.Lock(); defer l.mu.Unlock(); return l.reachable[uid] }
func (l *live) CloseUser(int64, string)  {}
func (l *live) CloseToken(int64, string) {}
func (l *live) DropSubscription(uid int64, topic string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped = append(l.dropped, fmt.Sprint(uid, " ", topic))
}

// plainPasswords "hashes" by prefixing: the domain's rules, not argon2id,
// are under test here.
type plainPasswords struct{}

func (plainPasswords) Hash(pw string) (string, error)       { return "plain:" + pw, nil }
func (plainPasswords) Verify(hash, pw string) (bool, error) { return hash == "plain:"+pw, nil }

// plainTokens "signs" a token as its id and uid in clear: the domain's
// records, not JWTs, are under test here.
type plainTokens struct{}

func (plainTokens) Sign(t im.AccessToken) (string, error) {
	return fmt.Sprintf("%s.%d.%d", t.ID, t.UID, t.ExpiresAt), nil
}

func (plainTokens) Parse(s string) (im.AccessToken, error) {
	var t im.AccessToken
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return t, errors.New("bad token")
	}
	t.ID = parts[0]
	if _, err := fmt.Sscan(parts[1], &t.UID); err != nil {
		return t, err
	}
	if _, err := fmt.Sscan(parts[2], &t.ExpiresAt); err != nil {
		return t, err
	}
	return t, nil
}

// domain is a Service on a fresh SQLite store.
type domain struct {
	*im.Service
	pub   *recorder
	live  *live
	admin im.Principal
}

func newDomain(t *testing.T) *domain {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "im.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	d := &domain{pub: &recorder{}, live: &live{}}
	d.Service, err = im.New(ctx, im.Options{Store: st, Publisher: d.pub, Passwords: plainPasswords{}, Tokens: plainTokens{}, Live: d.live, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.Close(ctx); err != nil {
			t.Error(err)
		}
		st.Close()
	})
	if _, err := d.Accounts.EnsureAdmin(ctx, "admin", "admin-secret"); err != nil {
		t.Fatal(err)
	}
	d.admin = d.login(t, "admin", "admin-secret")
	return d
}

func (d *domain) login(t *testing.T, name, pw string) im.Principal {
	t.Helper()
	tok, err := d.Accounts.Login(context.Background(), name, pw)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := d.Accounts.Authenticate(context.Background(), tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// user registers a user and returns it as a principal.
func (d *domain) user(t *testing.T, name string) im.Principal {
	t.Helper()
	if _, err := d.Accounts.Register(context.Background(), name, "password"); err != nil {
		t.Fatal(err)
	}
	return d.login(t, name, "password")
}

func text(s string) wire.Publish {
	b, _ := json.Marshal(s)
	return wire.Publish{Type: wire.TypeText, Body: b}
}

func withCID(p wire.Publish, cid string) wire.Publish {
	p.CID = cid
	return p
}

// refusedAs checks that err is the domain's refusal of kind.
func refusedAs(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v, want %v", err, kind)
	}
}

// eventually waits up to 10 s for cond (for work the domain does in the
// background).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func bodyOf(env map[string]any) string { s, _ := env["body"].(string); return s }

func inbox(p im.Principal) string { return topics.Inbox(p.UID) }
