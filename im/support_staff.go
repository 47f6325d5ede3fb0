package im

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/imserver/imserver/wire"
)

// The v1.1 additions of customer service (PROTOCOL.md §6 and §8): verified
// visitors, the identity secret their hashes are made with, canned replies,
// taking a queued ticket, and what the staff see of a customer.

// CannedReply is a shop's prepared answer, picked by its shortcut.
type CannedReply struct {
	ID        int64
	Shop      int64
	Shortcut  string
	Text      string
	CreatedAt int64
}

// CustomerPage is the page a customer writes to a shop from, as the
// widget reports it.
type CustomerPage struct {
	Shop      int64
	Customer  int64
	URL       string
	Title     string
	UpdatedAt int64
}

// Customer is what the staff of a shop see of one of its customers.
type Customer struct {
	User
	FirstContact int64    // when its first ticket with the shop opened; 0 if none
	Tickets      []Ticket // newest first
	Page         *CustomerPage
}

// Limits of the v1.1 customer-service data.
const (
	maxExternalID     = 128
	maxShortcut       = 32
	maxCannedReplies  = 200
	maxPageTitle      = 256
	maxCustomerTicket = 50
)

// IdentitySecret returns the shop's identity secret (admins only): the key
// of the HMAC that verified visitors' hashes are made with. A shop made
// before secrets existed gets one now.
func (s *Support) IdentitySecret(ctx context.Context, p Principal, shop int64) (string, error) {
	if err := requireAdmin(p); err != nil {
		return "", err
	}
	if _, err := s.shop(ctx, shop); err != nil {
		return "", err
	}
	secret, err := s.store.IdentitySecret(ctx, shop, newSecret())
	if err != nil {
		return "", fmt.Errorf("identity secret of shop %d: %w", shop, err)
	}
	return secret, nil
}

// newSecret returns 256 random bits in hex.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Visitor signs in a shop's verified visitor (POST /auth/visitor): hash
// must be the lowercase hex HMAC-SHA256 of externalID with the shop's
// identity secret. The same (shop, externalID) is always the same guest
// account; a name given updates its display name.
func (s *Support) Visitor(ctx context.Context, shop int64, externalID, name, hash string) (Token, error) {
	bad := errorf(ErrUnauthorized, "the visitor's hash does not match")
	if externalID == "" || len(externalID) > maxExternalID || len(hash) != 2*sha256.Size {
		return Token{}, errorf(ErrInvalid, "external_id (1 to %d bytes) and hash (64 hex digits) are required", maxExternalID)
	}
	if shop <= 0 {
		return Token{}, errorf(ErrInvalid, "shop_id must be a positive integer")
	}
	if _, err := s.shop(ctx, shop); err != nil {
		return Token{}, err
	}
	secret, err := s.store.IdentitySecret(ctx, shop, newSecret())
	if err != nil {
		return Token{}, fmt.Errorf("identity secret of shop %d: %w", shop, err)
	}
	want := VisitorHash(secret, externalID)
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(hash))) {
		return Token{}, bad
	}
	fresh, err := s.accounts.newGuest(name)
	if err != nil {
		return Token{}, err
	}
	u, err := s.store.Visitor(ctx, shop, externalID, fresh)
	if err != nil {
		return Token{}, fmt.Errorf("visitor: %w", err)
	}
	if u.Disabled {
		return Token{}, bad
	}
	if fresh.Name != "" && fresh.Name != u.Name {
		if err := s.accounts.store.SetName(ctx, u.UID, fresh.Name); err != nil {
			return Token{}, fmt.Errorf("visitor's name: %w", err)
		}
		u.Name = fresh.Name
	}
	s.accounts.known.add(u)
	return s.accounts.Issue(ctx, u)
}

// VisitorHash is what a shop's server computes for a verified visitor:
// the lowercase hex HMAC-SHA256 of externalID with the identity secret.
func VisitorHash(secret, externalID string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(externalID))
	return hex.EncodeToString(m.Sum(nil))
}

// Take gives a queued ticket to p, an agent of its shop (POST
// /cs/sessions/{id}/take). ErrConflict if it is no longer queued.
func (s *Support) Take(ctx context.Context, p Principal, id int64) error {
	t, err := s.ticketForStaff(ctx, p, id)
	if err != nil {
		return err
	}
	if ok, err := s.store.IsAgent(ctx, t.Shop, p.UID); err != nil {
		return fmt.Errorf("check agent: %w", err)
	} else if !ok {
		return errorf(ErrForbidden, "only agents of shop %d may take its sessions", t.Shop)
	}
	return s.dispatch.take(ctx, t, p.UID)
}

// checkCanned trims a canned reply's shortcut (a leading "/" is dropped)
// and checks it and the text.
func checkCanned(c *CannedReply) error {
	c.Shortcut = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(c.Shortcut), "/"))
	if n := utf8.RuneCountInString(c.Shortcut); n < 1 || n > maxShortcut || strings.ContainsAny(c.Shortcut, " \t\r\n") {
		return errorf(ErrInvalid, "shortcut must be 1 to %d characters without spaces", maxShortcut)
	}
	if n := utf8.RuneCountInString(c.Text); n < 1 || n > wire.MaxTextLen {
		return errorf(ErrInvalid, "text must be 1 to %d characters", wire.MaxTextLen)
	}
	return nil
}

// CannedReplies lists a shop's canned replies (its agents and admins).
func (s *Support) CannedReplies(ctx context.Context, p Principal, shop int64) ([]CannedReply, error) {
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return nil, err
	}
	out, err := s.store.CannedReplies(ctx, shop)
	if err != nil {
		return nil, fmt.Errorf("canned replies of shop %d: %w", shop, err)
	}
	return out, nil
}

// CreateCannedReply adds one (its agents and admins).
func (s *Support) CreateCannedReply(ctx context.Context, p Principal, c CannedReply) (CannedReply, error) {
	if err := s.requireStaff(ctx, p, c.Shop); err != nil {
		return CannedReply{}, err
	}
	if err := checkCanned(&c); err != nil {
		return CannedReply{}, err
	}
	existing, err := s.store.CannedReplies(ctx, c.Shop)
	if err != nil {
		return CannedReply{}, fmt.Errorf("canned replies of shop %d: %w", c.Shop, err)
	}
	if len(existing) >= maxCannedReplies {
		return CannedReply{}, errorf(ErrInvalid, "a shop has at most %d canned replies", maxCannedReplies)
	}
	c.CreatedAt = s.nowMillis()
	if c, err = s.store.CreateCannedReply(ctx, c); err != nil {
		return CannedReply{}, fmt.Errorf("create canned reply: %w", err)
	}
	return c, nil
}

// UpdateCannedReply changes one's shortcut and/or text (nil: as it is).
func (s *Support) UpdateCannedReply(ctx context.Context, p Principal, shop, id int64, shortcut, text *string) (CannedReply, error) {
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return CannedReply{}, err
	}
	c, err := s.store.CannedReply(ctx, shop, id)
	if errors.Is(err, ErrNotFound) {
		return CannedReply{}, errorf(ErrNotFound, "shop %d has no canned reply %d", shop, id)
	}
	if err != nil {
		return CannedReply{}, fmt.Errorf("canned reply %d: %w", id, err)
	}
	if shortcut != nil {
		c.Shortcut = *shortcut
	}
	if text != nil {
		c.Text = *text
	}
	if err := checkCanned(&c); err != nil {
		return CannedReply{}, err
	}
	if err := s.store.UpdateCannedReply(ctx, c); err != nil {
		return CannedReply{}, fmt.Errorf("update canned reply %d: %w", id, err)
	}
	return c, nil
}

// DeleteCannedReply deletes one.
func (s *Support) DeleteCannedReply(ctx context.Context, p Principal, shop, id int64) error {
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return err
	}
	ok, err := s.store.DeleteCannedReply(ctx, shop, id)
	if err != nil {
		return fmt.Errorf("delete canned reply %d: %w", id, err)
	}
	if !ok {
		return errorf(ErrNotFound, "shop %d has no canned reply %d", shop, id)
	}
	return nil
}

// SetPage records the page p writes to the shop from (PUT
// /shops/{id}/context, sent by the widget); the shop's staff see it in
// the customer's panel.
func (s *Support) SetPage(ctx context.Context, p Principal, shop int64, url, title string) error {
	if _, err := s.shop(ctx, shop); err != nil {
		return err
	}
	if err := checkURL("url", url, true); err != nil {
		return err
	}
	title = strings.TrimSpace(title)
	if utf8.RuneCountInString(title) > maxPageTitle {
		title = string([]rune(title)[:maxPageTitle])
	}
	if !utf8.ValidString(title) {
		return errorf(ErrInvalid, "title is not valid UTF-8")
	}
	err := s.store.SetCustomerPage(ctx, CustomerPage{Shop: shop, Customer: p.UID, URL: url, Title: title, UpdatedAt: s.nowMillis()})
	if err != nil {
		return fmt.Errorf("customer page: %w", err)
	}
	return nil
}

// Customer returns what the shop's staff see of a customer: its account,
// first contact, tickets and the page it writes from.
func (s *Support) Customer(ctx context.Context, p Principal, shop, uid int64) (Customer, error) {
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return Customer{}, err
	}
	u, err := s.accounts.User(ctx, uid)
	if err != nil {
		return Customer{}, err
	}
	c := Customer{User: u}
	if c.Tickets, err = s.store.CustomerTickets(ctx, shop, uid, maxCustomerTicket); err != nil {
		return Customer{}, fmt.Errorf("tickets of %d: %w", uid, err)
	}
	if len(c.Tickets) == 0 {
		return Customer{}, errorf(ErrNotFound, "user %d is not a customer of shop %d", uid, shop)
	}
	c.FirstContact = c.Tickets[len(c.Tickets)-1].CreatedAt
	page, ok, err := s.store.CustomerPage(ctx, shop, uid)
	if err != nil {
		return Customer{}, fmt.Errorf("page of %d: %w", uid, err)
	}
	if ok {
		c.Page = &page
	}
	return c, nil
}

// displayName is what people are called in events: the display name, or
// the username.
func displayName(u User) string {
	if u.Name != "" {
		return u.Name
	}
	return u.Username
}

// names returns the display names of uids (0 and unknown uids are left
// out), for the cs_* events.
func (d *dispatcher) names(ctx context.Context, uids ...int64) map[int64]string {
	var ask []int64
	for _, uid := range uids {
		if uid != 0 {
			ask = append(ask, uid)
		}
	}
	out := make(map[int64]string, len(ask))
	if len(ask) == 0 {
		return out
	}
	users, err := d.accounts.store.UsersByID(ctx, ask)
	if err != nil {
		d.log.Warn("names for an event", "error", err)
		return out
	}
	for _, u := range users {
		out[u.UID] = displayName(u)
	}
	return out
}
