package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/imserver/imserver/im"
)

// Argon2 hashes passwords with argon2id and a random 16-byte salt, encoded
// in the PHC string format ($argon2id$v=19$m=…,t=…,p=…$salt$hash) so that
// hashes made with other parameters keep verifying.
type Argon2 struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

var _ im.Passwords = Argon2{}

// DefaultArgon2 follows OWASP's recommendation for argon2id: 19 MiB of
// memory, 2 passes, 1 lane.
var DefaultArgon2 = Argon2{Memory: 19 * 1024, Time: 2, Threads: 1}

const keyLen = 32

// Hash implements im.Passwords.
func (a Argon2) Hash(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, a.Time, a.Memory, a.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.Memory, a.Time, a.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify implements im.Passwords. An empty or malformed hash costs the same
// as a real check and fails. It never returns an error.
func (a Argon2) Verify(hash, password string) (bool, error) {
	p, salt, want, ok := parsePHC(hash)
	if !ok {
		p, salt, want = a, make([]byte, 16), make([]byte, keyLen)
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return ok && subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePHC(s string) (Argon2, []byte, []byte, bool) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return Argon2{}, nil, nil, false
	}
	var p Argon2
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory < 8 || p.Memory > 1<<22 || p.Time < 1 || p.Time > 16 || p.Threads < 1 {
		return Argon2{}, nil, nil, false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Argon2{}, nil, nil, false
	}
	return p, salt, key, true
}

// Limited bounds how many hashes of an im.Passwords run at once. Each
// argon2id hash holds its memory parameter (19 MiB with DefaultArgon2)
// while it runs and keeps a CPU busy, so without a bound a burst of
// logins can take the process's memory and starve everything else. A
// call waits up to Wait for a free slot, then fails with an error
// wrapping im.ErrUnavailable (the REST API answers 503 with Retry-After).
type Limited struct {
	p     im.Passwords
	slots chan struct{}
	wait  time.Duration
}

var _ im.Passwords = (*Limited)(nil)

// DefaultHashWait is how long a password check waits for a free slot.
const DefaultHashWait = time.Second

// DefaultHashConcurrency is the default number of hashes run at once:
// one per CPU the Go scheduler uses, at most 8 (152 MiB with DefaultArgon2).
func DefaultHashConcurrency() int { return min(max(1, runtime.GOMAXPROCS(0)), 8) }

// Limit returns p running at most n hashes at once (default
// DefaultHashConcurrency), a call waiting up to wait (default
// DefaultHashWait) for its turn.
func Limit(p im.Passwords, n int, wait time.Duration) *Limited {
	if n <= 0 {
		n = DefaultHashConcurrency()
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &Limited{p: p, slots: make(chan struct{}, n), wait: wait}
}

// errBusy is the refusal of a call that found no free slot in time.
var errBusy = &im.Error{Kind: im.ErrUnavailable, Msg: "the server is busy checking passwords: try again in a moment"}

func (l *Limited) acquire() error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy
	}
}

// Hash implements im.Passwords.
func (l *Limited) Hash(password string) (string, error) {
	if err := l.acquire(); err != nil {
		return "", err
	}
	defer func() { <-l.slots }()
	return l.p.Hash(password)
}

// Verify implements im.Passwords.
func (l *Limited) Verify(hash, password string) (bool, error) {
	if err := l.acquire(); err != nil {
		return false, err
	}
	defer func() { <-l.slots }()
	return l.p.Verify(hash, password)
}
