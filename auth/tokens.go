// Package auth signs and parses access tokens (HS256 JWTs) and hashes
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
// signed with another key or algorithm, made by another installation, or
// missing a required claim.
var ErrInvalidToken = errors.New("invalid or expired access token")

// Tokens signs and parses access tokens. A token carries who it is for
// (sub), its id (jti), when it was issued and expires, and the
// installation that issued it (ins): a token of another installation —
// another database that happens to share the key — is refused here, and
// the domain refuses one whose id it did not record.
type Tokens struct {
	secret       []byte
	installation string
	now          func() time.Time
}

var _ im.TokenCodec = (*Tokens)(nil)

type claims struct {
	Installation string `json:"ins"`
	jwt.RegisteredClaims
}

// NewTokens returns Tokens signing with secret for installation (the
// database's id). now may be nil (time.Now).
func NewTokens(secret []byte, installation string, now func() time.Time) (*Tokens, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("token secret is %d bytes: want at least %d", len(secret), MinSecretLen)
	}
	if installation == "" {
		return nil, fmt.Errorf("tokens need the installation's id")
	}
	if now == nil {
		now = time.Now
	}
	return &Tokens{secret: secret, installation: installation, now: now}, nil
}

// Sign implements im.TokenCodec.
func (t *Tokens) Sign(at im.AccessToken) (string, error) {
	c := claims{
		Installation: t.installation,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   strconv.FormatInt(at.UID, 10),
			ID:        at.ID,
			IssuedAt:  jwt.NewNumericDate(time.UnixMilli(at.IssuedAt)),
			ExpiresAt: jwt.NewNumericDate(time.UnixMilli(at.ExpiresAt)),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return s, nil
}

// Parse implements im.TokenCodec: it checks the signature (HS256 only:
// the algorithm is pinned, so "none" and RS/HS confusion are refused), the
// issuer, the installation and the required expiry, id and subject.
func (t *Tokens) Parse(token string) (im.AccessToken, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
		jwt.WithTimeFunc(t.now),
	)
	if err != nil {
		return im.AccessToken{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	uid, err := strconv.ParseInt(c.Subject, 10, 64)
	if err != nil || uid <= 0 || c.ID == "" || len(c.ID) > 64 {
		return im.AccessToken{}, fmt.Errorf("%w: bad subject or id", ErrInvalidToken)
	}
	if c.Installation != t.installation {
		return im.AccessToken{}, fmt.Errorf("%w: issued by another installation", ErrInvalidToken)
	}
	at := im.AccessToken{ID: c.ID, UID: uid, ExpiresAt: c.ExpiresAt.UnixMilli()}
	if c.IssuedAt != nil {
		at.IssuedAt = c.IssuedAt.UnixMilli()
	}
	return at, nil
}
