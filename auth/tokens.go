// Package auth issues and verifies access tokens (HS256 JWTs) and hashes
// passwords (argon2id).
package auth

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/imserver/imserver/im"
)

// issuer is the iss claim of every token this server makes.
const issuer = "imserver"

// MinSecretLen is the shortest HMAC key accepted, in bytes.
const MinSecretLen = 32

// ErrInvalidToken is returned for a token that is malformed, expired,
// signed with another key or algorithm, or missing a required claim.
var ErrInvalidToken = errors.New("invalid or expired access token")

// Tokens issues and verifies access tokens.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	now    func() time.Time
}

type claims struct {
	Username string `json:"name"`
	Role     string `json:"role"`
	jwt.RegisteredClaims
}

// NewTokens returns a Tokens signing with secret; tokens live for ttl.
// now may be nil (time.Now).
func NewTokens(secret []byte, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("token secret is %d bytes: want at least %d", len(secret), MinSecretLen)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("token lifetime must be positive")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{secret: secret, ttl: ttl, now: now}, nil
}

// TTL returns how long issued tokens are valid.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed token for p.
func (t *Tokens) Issue(p im.Principal) (string, error) {
	now := t.now()
	c := claims{
		Username: p.Username,
		Role:     p.Role,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   strconv.FormatInt(p.UID, 10),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Verify checks a token's signature (HS256 only: the algorithm is pinned,
// so "none" and RS/HS confusion are refused), its issuer and its required
// expiry, and returns who it was issued to and when it expires.
func (t *Tokens) Verify(token string) (im.Principal, time.Time, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return im.Principal{}, time.Time{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	uid, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || uid <= 0 || (c.Role != im.RoleUser && c.Role != im.RoleAdmin) {
		return im.Principal{}, time.Time{}, fmt.Errorf("%w: bad subject or role", ErrInvalidToken)
	}
	return im.Principal{UID: uid, Username: c.Username, Role: c.Role}, c.ExpiresAt.Time, nil
}
