package clients

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// KeywordReply is an automatic answer to customer messages containing
// Keyword (case-insensitive).
type KeywordReply struct {
	Keyword string `json:"keyword"`
	Reply   string `json:"reply"`
}

// Shop is a shop's customer service. The settings are only returned to its
// agents and to admins.
type Shop struct {
	ShopID         int64          `json:"shop_id"`
	Name           string         `json:"name"`
	WelcomeMessage string         `json:"welcome_message,omitempty"`
	OfflineMessage string         `json:"offline_message,omitempty"`
	KeywordReplies []KeywordReply `json:"keyword_replies,omitempty"`
}

// ShopSettings creates or changes a shop; nil fields are left as they are
// (PATCH) or unset (create).
type ShopSettings struct {
	Name           *string        `json:"name,omitempty"`
	WelcomeMessage *string        `json:"welcome_message,omitempty"`
	OfflineMessage *string        `json:"offline_message,omitempty"`
	KeywordReplies []KeywordReply `json:"keyword_replies,omitempty"`
}

// Agent is an agent of a shop as GET /shops/{id}/agents lists it.
type Agent struct {
	UID          int64  `json:"uid"`
	Username     string `json:"username"`
	Online       bool   `json:"online"`
	Status       string `json:"status"`
	OpenSessions int64  `json:"open_sessions"`
}

// Session statuses.
const (
	SessionQueued = "queued"
	SessionOpen   = "open"
	SessionClosed = "closed"
)

// Session is a customer-service session.
type Session struct {
	SessionID int64  `json:"session_id"`
	ShopID    int64  `json:"shop_id"`
	Customer  int64  `json:"customer"`
	Agent     int64  `json:"agent"`
	Status    string `json:"status"`
	CreatedAt int64  `json:"created_at"`
}

func shopPath(shop int64) string { return "/shops/" + strconv.FormatInt(shop, 10) }

// String returns a pointer to s, for ShopSettings.
func String(s string) *string { return &s }

// CreateShop creates a shop (admins only).
func (a *API) CreateShop(ctx context.Context, s ShopSettings) (Shop, error) {
	var out Shop
	err := a.Do(ctx, http.MethodPost, "/shops", s, &out)
	return out, err
}

// UpdateShop changes a shop's settings (admins only).
func (a *API) UpdateShop(ctx context.Context, shop int64, s ShopSettings) error {
	return a.Do(ctx, http.MethodPatch, shopPath(shop), s, nil)
}

// Shops lists the shops.
func (a *API) Shops(ctx context.Context) ([]Shop, error) {
	var out []Shop
	err := a.Do(ctx, http.MethodGet, "/shops", nil, &out)
	return out, err
}

// Shop returns one shop.
func (a *API) Shop(ctx context.Context, shop int64) (Shop, error) {
	var out Shop
	err := a.Do(ctx, http.MethodGet, shopPath(shop), nil, &out)
	return out, err
}

// AddAgent makes a user an agent of a shop (admins only).
func (a *API) AddAgent(ctx context.Context, shop, uid int64) error {
	return a.Do(ctx, http.MethodPost, shopPath(shop)+"/agents", map[string]int64{"uid": uid}, nil)
}

// RemoveAgent removes an agent from a shop (admins only).
func (a *API) RemoveAgent(ctx context.Context, shop, uid int64) error {
	return a.Do(ctx, http.MethodDelete, shopPath(shop)+"/agents/"+strconv.FormatInt(uid, 10), nil, nil)
}

// Agents lists a shop's agents with their presence and load (the shop's
// agents and admins only).
func (a *API) Agents(ctx context.Context, shop int64) ([]Agent, error) {
	var out []Agent
	err := a.Do(ctx, http.MethodGet, shopPath(shop)+"/agents", nil, &out)
	return out, err
}

// Sessions lists a shop's sessions with the given status (SessionQueued,
// SessionOpen, SessionClosed; "" for the server's default).
func (a *API) Sessions(ctx context.Context, shop int64, status string) ([]Session, error) {
	path := shopPath(shop) + "/sessions"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	var out []Session
	err := a.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// TransferSession hands a session to another agent of the shop.
func (a *API) TransferSession(ctx context.Context, session, toAgent int64) error {
	return a.Do(ctx, http.MethodPost, "/cs/sessions/"+strconv.FormatInt(session, 10)+"/transfer", map[string]int64{"to": toAgent}, nil)
}

// CloseSession ends a session; the customer's next message opens a new one.
func (a *API) CloseSession(ctx context.Context, session int64) error {
	return a.Do(ctx, http.MethodPost, "/cs/sessions/"+strconv.FormatInt(session, 10)+"/close", nil, nil)
}
