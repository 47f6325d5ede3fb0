package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imserver/imserver/im"
)

var secret = []byte(strings.Repeat("k", 32))

func TestTokenRoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, err := NewTokens(secret, "inst-1", func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	at := im.AccessToken{ID: "abc", UID: 7, IssuedAt: now.UnixMilli(), ExpiresAt: now.Add(time.Hour).UnixMilli()}
	s, err := tok.Sign(at)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tok.Parse(s)
	if err != nil || got != at {
		t.Fatalf("Parse = %+v %v, want %+v", got, err, at)
	}
}

func TestParseRefuses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, _ := NewTokens(secret, "inst-1", func() time.Time { return now })
	good, _ := tok.Sign(im.AccessToken{ID: "abc", UID: 7, IssuedAt: now.UnixMilli(), ExpiresAt: now.Add(time.Hour).UnixMilli()})
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	valid := func() jwt.MapClaims {
		return jwt.MapClaims{"iss": "imserver", "sub": "7", "jti": "abc", "ins": "inst-1", "exp": now.Add(time.Minute).Unix()}
	}
	with := func(k string, v any) jwt.MapClaims {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for _, tc := range []struct{ name, token string }{
		{"empty", ""},
		{"garbage", "not.a.jwt"},
		{"tampered", good[:len(good)-2] + "xx"},
		{"other key", sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), valid())},
		{"HS512", sign(jwt.SigningMethodHS512, secret, valid())},
		{"none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid())},
		{"no exp", sign(jwt.SigningMethodHS256, secret, with("exp", nil))},
		{"expired", sign(jwt.SigningMethodHS256, secret, with("exp", now.Add(-time.Second).Unix()))},
		{"other issuer", sign(jwt.SigningMethodHS256, secret, with("iss", "someone"))},
		{"bad subject", sign(jwt.SigningMethodHS256, secret, with("sub", "x"))},
		{"zero subject", sign(jwt.SigningMethodHS256, secret, with("sub", "0"))},
		{"no id", sign(jwt.SigningMethodHS256, secret, with("jti", nil))},
		{"another installation", sign(jwt.SigningMethodHS256, secret, with("ins", "inst-2"))},
		{"no installation", sign(jwt.SigningMethodHS256, secret, with("ins", nil))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if at, err := tok.Parse(tc.token); err == nil {
				t.Fatalf("accepted: %+v", at)
			}
		})
	}
	if _, err := tok.Parse(sign(jwt.SigningMethodHS256, secret, valid())); err != nil {
		t.Fatalf("the control token is refused: %v", err)
	}
}

func TestNewTokensRefusesShortSecret(t *testing.T) {
	if _, err := NewTokens([]byte("short"), "inst", nil); err == nil {
		t.Fatal("short secret accepted")
	}
}

func TestArgon2(t *testing.T) {
	a := Argon2{Memory: 64, Time: 1, Threads: 1}
	h, err := a.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash format: %s", h)
	}
	h2, _ := a.Hash("correct horse")
	if h == h2 {
		t.Fatal("same hash twice: no salt")
	}
	verify := func(p im.Passwords, hash, pw string) bool {
		ok, err := p.Verify(hash, pw)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return ok
	}
	if !verify(a, h, "correct horse") || verify(a, h, "wrong horse") {
		t.Fatal("Verify gives wrong answers")
	}
	// Hashes made with other parameters still verify.
	if !verify(DefaultArgon2, h, "correct horse") {
		t.Fatal("parameters are not read from the hash")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=64,t=1,p=1$$", "$2a$10$abc", h[:len(h)-4]} {
		if verify(a, bad, "correct horse") {
			t.Fatalf("malformed hash %q verified", bad)
		}
	}
}

func TestLoadOrCreateSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "jwt.secret")
	s1, created, err := LoadOrCreateSecret(path)
	if err != nil || !created || len(s1) < MinSecretLen {
		t.Fatalf("create: %q %v %v", s1, created, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	s2, created, err := LoadOrCreateSecret(path)
	if err != nil || created || string(s1) != string(s2) {
		t.Fatalf("reload: %q %v %v", s2, created, err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := LoadOrCreateSecret(path); err == nil {
		t.Fatal("world-readable secret accepted")
	}
}

// blocking is a password hasher whose calls wait for release.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b blocking) Hash(string) (string, error) {
	b.entered <- struct{}{}
	<-b.release
	return "h", nil
}

func (b blocking) Verify(string, string) (bool, error) {
	b.entered <- struct{}{}
	<-b.release
	return true, nil
}

func TestLimitedHashing(t *testing.T) {
	b := blocking{entered: make(chan struct{}, 10), release: make(chan struct{})}
	l := Limit(b, 2, 50*time.Millisecond)
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := l.Verify("h", "pw")
			done <- err
		}()
	}
	<-b.entered
	<-b.entered
	if _, err := l.Verify("h", "pw"); !errors.Is(err, im.ErrUnavailable) {
		t.Fatalf("a third check while two run: %v, want ErrUnavailable", err)
	}
	if _, err := l.Hash("pw"); !errors.Is(err, im.ErrUnavailable) {
		t.Fatalf("a hash while two run: %v, want ErrUnavailable", err)
	}
	close(b.release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := l.Verify("h", "pw"); !ok || err != nil {
		t.Fatalf("after the others finished: %v %v", ok, err)
	}
	if DefaultHashConcurrency() < 1 || DefaultHashConcurrency() > 8 {
		t.Fatalf("DefaultHashConcurrency = %d", DefaultHashConcurrency())
	}
}
