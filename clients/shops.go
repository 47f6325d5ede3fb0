package clients

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/imserver/imserver/wire"
)

// Shops, agents and sessions use the contract's shapes: wire.Shop,
// wire.ShopInput, wire.ShopAgent, wire.CSSession.

func shopPath(shop int64) string { return "/shops/" + strconv.FormatInt(shop, 10) }

// String returns a pointer to s, for wire.ShopInput.
func String(s string) *string { return &s }

// CreateShop creates a shop (admins only).
func (a *API) CreateShop(ctx context.Context, s wire.ShopInput) (wire.Shop, error) {
	var out wire.Shop
	err := a.Do(ctx, http.MethodPost, "/shops", s, &out)
	return out, err
}

// UpdateShop changes a shop's settings (admins only). Nil fields are left
// as they are; a non-nil empty KeywordReplies clears them.
func (a *API) UpdateShop(ctx context.Context, shop int64, s wire.ShopInput) error {
	return a.Do(ctx, http.MethodPatch, shopPath(shop), s, nil)
}

// Shops lists the shops.
func (a *API) Shops(ctx context.Context) ([]wire.Shop, error) {
	var out []wire.Shop
	err := a.Do(ctx, http.MethodGet, "/shops", nil, &out)
	return out, err
}

// Shop returns one shop.
func (a *API) Shop(ctx context.Context, shop int64) (wire.Shop, error) {
	var out wire.Shop
	err := a.Do(ctx, http.MethodGet, shopPath(shop), nil, &out)
	return out, err
}

// AddAgent makes a user an agent of a shop (admins only).
func (a *API) AddAgent(ctx context.Context, shop, uid int64) error {
	return a.Do(ctx, http.MethodPost, shopPath(shop)+"/agents", wire.UserRef{UID: uid}, nil)
}

// RemoveAgent removes an agent from a shop (admins only).
func (a *API) RemoveAgent(ctx context.Context, shop, uid int64) error {
	return a.Do(ctx, http.MethodDelete, shopPath(shop)+"/agents/"+strconv.FormatInt(uid, 10), nil, nil)
}

// Agents lists a shop's agents with their presence and load (the shop's
// agents and admins only).
func (a *API) Agents(ctx context.Context, shop int64) ([]wire.ShopAgent, error) {
	var out []wire.ShopAgent
	err := a.Do(ctx, http.MethodGet, shopPath(shop)+"/agents", nil, &out)
	return out, err
}

// Sessions lists a shop's sessions with the given status
// (wire.SessionQueued, wire.SessionOpen, wire.SessionClosed; "" for all).
func (a *API) Sessions(ctx context.Context, shop int64, status string) ([]wire.CSSession, error) {
	path := shopPath(shop) + "/sessions"
	if status != "" {
		path += "?status=" + url.QueryEscape(status)
	}
	var out []wire.CSSession
	err := a.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// TransferSession hands a session to another agent of the shop.
func (a *API) TransferSession(ctx context.Context, session, toAgent int64) error {
	return a.Do(ctx, http.MethodPost, "/cs/sessions/"+strconv.FormatInt(session, 10)+"/transfer", wire.Transfer{To: toAgent}, nil)
}

// CloseSession ends a session; the customer's next message opens a new one.
func (a *API) CloseSession(ctx context.Context, session int64) error {
	return a.Do(ctx, http.MethodPost, "/cs/sessions/"+strconv.FormatInt(session, 10)+"/close", nil, nil)
}
