package auth

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imserver/imserver/im"
)

// FuzzTokensParse feeds Parse arbitrary strings, seeded with real tokens
// and the classic attacks on them. Whatever it accepts must be a
// well-formed token of this installation expiring in the future; nothing
// may panic.
func FuzzTokensParse(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	tok, err := NewTokens(secret, "inst-1", func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	good, _ := tok.Sign(im.AccessToken{ID: "abc", UID: 7, IssuedAt: now.UnixMilli(), ExpiresAt: now.Add(time.Hour).UnixMilli()})
	other, _ := tok.Sign(im.AccessToken{ID: "def", UID: 1, IssuedAt: now.UnixMilli(), ExpiresAt: now.Add(time.Minute).UnixMilli()})
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, _ := jwt.NewWithClaims(m, c).SignedString(key)
		return s
	}
	claims := func(extra map[string]any) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "imserver", "sub": "7", "jti": "abc", "ins": "inst-1", "exp": now.Add(time.Minute).Unix()}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	parts := strings.Split(good, ".")
	for _, s := range []string{
		good, other, "", ".", "..", "a.b.c", "not.a.jwt", strings.Repeat("a", 10000),
		good[:len(good)-2] + "xx",                        // tampered signature
		parts[0] + "." + parts[1] + ".",                  // no signature
		parts[0] + "." + parts[1] + "." + parts[2] + "=", // padding
		sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)),
		sign(jwt.SigningMethodHS512, secret, claims(nil)),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"sub": "0"})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"sub": "-7"})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"sub": "99999999999999999999"})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"jti": strings.Repeat("j", 100)})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"ins": "inst-2"})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"exp": 1e300})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"exp": "soon"})),
		sign(jwt.SigningMethodHS256, secret, claims(map[string]any{"iss": []any{"imserver"}})),
		`eyJhbGciOiJIUzI1NiJ9.` + strings.Repeat("e30", 3000) + `.x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := tok.Parse(s)
		if err != nil {
			return
		}
		if at.UID <= 0 || at.ID == "" || len(at.ID) > 64 || at.ExpiresAt <= now.UnixMilli() {
			t.Fatalf("accepted %q as %+v", s, at)
		}
	})
}

// FuzzParsePHC checks the parser of stored password hashes: it never
// panics, whatever it accepts has parameters within the bounds Verify
// relies on, and printing what it parsed parses to the same values.
func FuzzParsePHC(f *testing.F) {
	h, _ := Argon2{Memory: 64, Time: 1, Threads: 1}.Hash("pw")
	d, _ := DefaultArgon2.Hash("pw")
	for _, s := range []string{
		h, d, "", "$", "$$$$$", "$argon2id$v=19$m=64,t=1,p=1$$",
		"$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=16$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=0,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=0$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=256$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=-1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==",
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, ok := parsePHC(s)
		if !ok {
			return
		}
		if p.Memory < 8 || p.Memory > 1<<22 || p.Time < 1 || p.Time > 16 || p.Threads < 1 || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
			t.Fatalf("%q parsed to %+v, salt %d bytes, key %d bytes", s, p, len(salt), len(key))
		}
		enc := base64.RawStdEncoding.EncodeToString
		again := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", p.Memory, p.Time, p.Threads, enc(salt), enc(key))
		p2, salt2, key2, ok := parsePHC(again)
		if !ok || p2 != p || !bytes.Equal(salt2, salt) || !bytes.Equal(key2, key) {
			t.Fatalf("%q → %q does not parse back to the same values", s, again)
		}
	})
}
