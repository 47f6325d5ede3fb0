package im

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// Ticket statuses. A ticket is what the contract calls a customer-service
// session: one episode of a customer's conversation with a shop, queued
// until an agent serves it, open while one does, closed at the end.
const (
	TicketQueued = "queued"
	TicketOpen   = "open"
	TicketClosed = "closed"
)

// Shop is a shop's customer service and its automatic replies.
type Shop struct {
	ID             int64
	Name           string
	WelcomeMessage string // sent when a ticket opens; "" for none
	OfflineMessage string // sent once per queued ticket; "" for none
	KeywordReplies []KeywordReply
	IdentitySecret string // the key of verified visitors' hashes; only written by CreateShop
	CreatedAt      int64
}

// KeywordReply is an automatic reply to text messages containing Keyword,
// compared case-insensitively.
type KeywordReply struct {
	Keyword string
	Reply   string
}

// Ticket is a customer's conversation episode with a shop's customer
// service (a "session" in the contract). Agent is 0 while it is queued.
type Ticket struct {
	ID              int64
	Shop            int64
	Customer        int64
	Agent           int64
	Status          string
	CreatedAt       int64
	AssignedAt      int64
	ClosedAt        int64
	OfflineNotified bool
}

// Agent is an agent of a shop as the routing rules see it.
type Agent struct {
	UID            int64
	Username       string
	Status         string // online or away (the user's choice, not presence)
	OpenTickets    int64  // open tickets of this shop assigned to it
	LastAssignedAt int64
}

// Support is customer service: shops and their settings, agents, and the
// staff's operations on tickets. Routing is its dispatcher's.
type Support struct {
	*core
	store    SupportStore
	accounts *Accounts
	dispatch *dispatcher
	presence *Presence
}

// Limits of shop settings.
const (
	maxShopName       = 64
	maxKeywordReplies = 100
	maxKeyword        = 64
	maxTicketsPage    = 500
)

// ShopFields are the settings of POST /shops and PATCH /shops/{id}; nil
// fields are left as they are.
type ShopFields struct {
	Name           *string
	WelcomeMessage *string
	OfflineMessage *string
	KeywordReplies *[]KeywordReply
}

func (f ShopFields) apply(shop *Shop) error {
	if f.Name != nil {
		name := strings.TrimSpace(*f.Name)
		if n := utf8.RuneCountInString(name); n < 1 || n > maxShopName {
			return errorf(ErrInvalid, "shop name must be 1 to %d characters", maxShopName)
		}
		shop.Name = name
	}
	for field, v := range map[string]*string{"welcome_message": f.WelcomeMessage, "offline_message": f.OfflineMessage} {
		if v != nil && utf8.RuneCountInString(*v) > wire.MaxTextLen {
			return errorf(ErrInvalid, "%s is longer than %d characters", field, wire.MaxTextLen)
		}
	}
	if f.WelcomeMessage != nil {
		shop.WelcomeMessage = *f.WelcomeMessage
	}
	if f.OfflineMessage != nil {
		shop.OfflineMessage = *f.OfflineMessage
	}
	if f.KeywordReplies != nil {
		krs := *f.KeywordReplies
		if len(krs) > maxKeywordReplies {
			return errorf(ErrInvalid, "at most %d keyword replies", maxKeywordReplies)
		}
		out := make([]KeywordReply, 0, len(krs))
		for i, kr := range krs {
			kw := strings.TrimSpace(kr.Keyword)
			if n := utf8.RuneCountInString(kw); n < 1 || n > maxKeyword {
				return errorf(ErrInvalid, "keyword_replies[%d].keyword must be 1 to %d characters", i, maxKeyword)
			}
			if n := utf8.RuneCountInString(kr.Reply); n < 1 || n > wire.MaxTextLen {
				return errorf(ErrInvalid, "keyword_replies[%d].reply must be 1 to %d characters", i, wire.MaxTextLen)
			}
			out = append(out, KeywordReply{Keyword: kw, Reply: kr.Reply})
		}
		shop.KeywordReplies = out
	}
	return nil
}

func requireAdmin(p Principal) error {
	if !p.IsAdmin() {
		return errorf(ErrForbidden, "only an admin may do this")
	}
	return nil
}

// shop returns a shop or a not-found error naming it.
func (s *Support) shop(ctx context.Context, id int64) (Shop, error) {
	return findShop(ctx, s.store, id)
}

func findShop(ctx context.Context, store SupportStore, id int64) (Shop, error) {
	shop, err := store.Shop(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Shop{}, errorf(ErrNotFound, "there is no shop %d", id)
	}
	if err != nil {
		return Shop{}, fmt.Errorf("shop %d: %w", id, err)
	}
	return shop, nil
}

// findShopFor is findShop that also tells whether uid is one of the
// shop's agents (one query: it is on every customer-service message's
// path).
func findShopFor(ctx context.Context, store SupportStore, id, uid int64) (Shop, bool, error) {
	shop, isAgent, err := store.ShopFor(ctx, id, uid)
	if errors.Is(err, ErrNotFound) {
		return Shop{}, false, errorf(ErrNotFound, "there is no shop %d", id)
	}
	if err != nil {
		return Shop{}, false, fmt.Errorf("shop %d: %w", id, err)
	}
	return shop, isAgent, nil
}

// CreateShop creates a shop (admin only).
func (s *Support) CreateShop(ctx context.Context, p Principal, f ShopFields) (Shop, error) {
	if err := requireAdmin(p); err != nil {
		return Shop{}, err
	}
	if f.Name == nil {
		return Shop{}, errorf(ErrInvalid, "name is required")
	}
	shop := Shop{CreatedAt: s.nowMillis(), KeywordReplies: []KeywordReply{}, IdentitySecret: newSecret()}
	if err := f.apply(&shop); err != nil {
		return Shop{}, err
	}
	shop, err := s.store.CreateShop(ctx, shop)
	if err != nil {
		return Shop{}, fmt.Errorf("create shop: %w", err)
	}
	return shop, nil
}

// UpdateShop changes a shop's settings (admin only).
func (s *Support) UpdateShop(ctx context.Context, p Principal, id int64, f ShopFields) (Shop, error) {
	if err := requireAdmin(p); err != nil {
		return Shop{}, err
	}
	shop, err := s.shop(ctx, id)
	if err != nil {
		return Shop{}, err
	}
	if err := f.apply(&shop); err != nil {
		return Shop{}, err
	}
	if err := s.store.UpdateShop(ctx, shop); err != nil {
		return Shop{}, fmt.Errorf("update shop %d: %w", id, err)
	}
	return shop, nil
}

// ShopView is a shop as a caller may see it: settings only for its agents
// and admins.
type ShopView struct {
	Shop
	Settings bool
}

// Shops lists the shops for p.
func (s *Support) Shops(ctx context.Context, p Principal) ([]ShopView, error) {
	shops, err := s.store.Shops(ctx)
	if err != nil {
		return nil, fmt.Errorf("list shops: %w", err)
	}
	mine, err := s.store.AgentShops(ctx, p.UID)
	if err != nil {
		return nil, fmt.Errorf("list shops: %w", err)
	}
	out := make([]ShopView, len(shops))
	for i, sh := range shops {
		out[i] = ShopView{Shop: sh, Settings: p.IsAdmin() || slices.Contains(mine, sh.ID)}
	}
	return out, nil
}

// Shop returns one shop for p.
func (s *Support) Shop(ctx context.Context, p Principal, id int64) (ShopView, error) {
	shop, err := s.shop(ctx, id)
	if err != nil {
		return ShopView{}, err
	}
	settings := p.IsAdmin()
	if !settings {
		if settings, err = s.store.IsAgent(ctx, id, p.UID); err != nil {
			return ShopView{}, fmt.Errorf("check agent: %w", err)
		}
	}
	return ShopView{Shop: shop, Settings: settings}, nil
}

// AddAgent makes uid an agent of the shop (admin only). If it is available
// now, the shop's queue drains to it at once.
func (s *Support) AddAgent(ctx context.Context, p Principal, shop, uid int64) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if _, err := s.shop(ctx, shop); err != nil {
		return err
	}
	if err := s.accounts.notGuest(ctx, uid); err != nil {
		return err
	}
	if err := s.store.AddAgent(ctx, shop, uid, s.nowMillis()); err != nil {
		return fmt.Errorf("add agent: %w", err)
	}
	s.dispatch.drain(ctx, shop)
	return nil
}

// RemoveAgent removes uid from the shop's agents (admin only). Its open
// tickets of that shop go back to the queue, which then drains to the
// available agents; it gets cs_transferred for each.
func (s *Support) RemoveAgent(ctx context.Context, p Principal, shop, uid int64) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if _, err := s.shop(ctx, shop); err != nil {
		return err
	}
	removed, err := s.store.RemoveAgent(ctx, shop, uid)
	if err != nil {
		return fmt.Errorf("remove agent: %w", err)
	}
	if !removed {
		return errorf(ErrNotFound, "user %d is not an agent of shop %d", uid, shop)
	}
	open, err := s.store.Tickets(ctx, shop, TicketOpen, 0)
	if err != nil {
		return fmt.Errorf("tickets of shop %d: %w", shop, err)
	}
	for _, t := range open {
		if t.Agent == uid {
			if err := s.dispatch.requeue(ctx, t); err != nil {
				return err
			}
		}
	}
	s.dispatch.drain(ctx, shop)
	return nil
}

// AgentView is an agent as GET /shops/{id}/agents shows it.
type AgentView struct {
	Agent
	Online bool
}

// requireStaff returns nil if p is an admin or an agent of the shop.
func (s *Support) requireStaff(ctx context.Context, p Principal, shop int64) error {
	if _, err := s.shop(ctx, shop); err != nil {
		return err
	}
	if p.IsAdmin() {
		return nil
	}
	ok, err := s.store.IsAgent(ctx, shop, p.UID)
	if err != nil {
		return fmt.Errorf("check agent: %w", err)
	}
	if !ok {
		return errorf(ErrForbidden, "only agents of shop %d and admins may do this", shop)
	}
	return nil
}

// Agents lists the shop's agents with their live presence (agents of the
// shop and admins).
func (s *Support) Agents(ctx context.Context, p Principal, shop int64) ([]AgentView, error) {
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return nil, err
	}
	agents, err := s.store.Agents(ctx, shop)
	if err != nil {
		return nil, fmt.Errorf("agents of shop %d: %w", shop, err)
	}
	out := make([]AgentView, len(agents))
	for i, a := range agents {
		out[i] = AgentView{Agent: a, Online: s.live.Online(a.UID)}
	}
	return out, nil
}

// Tickets lists the shop's tickets, optionally of one status (agents of
// the shop and admins).
func (s *Support) Tickets(ctx context.Context, p Principal, shop int64, status string) ([]Ticket, error) {
	switch status {
	case "", TicketQueued, TicketOpen, TicketClosed:
	default:
		return nil, errorf(ErrInvalid, "status must be queued, open or closed")
	}
	if err := s.requireStaff(ctx, p, shop); err != nil {
		return nil, err
	}
	out, err := s.store.Tickets(ctx, shop, status, maxTicketsPage)
	if err != nil {
		return nil, fmt.Errorf("tickets of shop %d: %w", shop, err)
	}
	return out, nil
}

// SetStatus records p's online/away choice, which its presence shows. An
// away agent gets no new tickets; coming back drains its shops' queues.
func (s *Support) SetStatus(ctx context.Context, p Principal, status string) error {
	if status != StatusOnline && status != StatusAway {
		return errorf(ErrInvalid, "status must be online or away")
	}
	if err := s.store.SetUserStatus(ctx, p.UID, status); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	s.presence.changed(p.UID, 0)
	if status == StatusOnline {
		s.dispatch.drainAgentShops(ctx, p.UID)
	}
	return nil
}

// ticketForStaff loads a ticket and checks that p is an agent of its shop
// or an admin.
func (s *Support) ticketForStaff(ctx context.Context, p Principal, id int64) (Ticket, error) {
	t, err := s.store.Ticket(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Ticket{}, errorf(ErrNotFound, "there is no session %d", id)
	}
	if err != nil {
		return Ticket{}, fmt.Errorf("ticket %d: %w", id, err)
	}
	if err := s.requireStaff(ctx, p, t.Shop); err != nil {
		return Ticket{}, err
	}
	return t, nil
}

// Transfer gives a ticket to another agent of its shop: the old agent and
// the customer get cs_transferred, the new agent cs_assigned and the
// ticket's messages it has not been sent.
func (s *Support) Transfer(ctx context.Context, p Principal, id, to int64) error {
	t, err := s.ticketForStaff(ctx, p, id)
	if err != nil {
		return err
	}
	if to <= 0 {
		return errorf(ErrInvalid, "to must be the uid of an agent of shop %d", t.Shop)
	}
	if ok, err := s.store.IsAgent(ctx, t.Shop, to); err != nil {
		return fmt.Errorf("check agent: %w", err)
	} else if !ok {
		return errorf(ErrInvalid, "user %d is not an agent of shop %d", to, t.Shop)
	}
	return s.dispatch.transfer(ctx, t, to)
}

// Close ends a ticket: cs_closed goes to the customer and the agent. The
// customer's next message opens a new ticket. Closing a closed ticket
// does nothing.
func (s *Support) Close(ctx context.Context, p Principal, id int64) error {
	t, err := s.ticketForStaff(ctx, p, id)
	if err != nil {
		return err
	}
	return s.dispatch.close(ctx, t)
}

// canRead returns nil if p may read a service conversation: its customer,
// the shop's agents, and admins.
func (s *Support) canRead(ctx context.Context, p Principal, c topics.Conv) error {
	if _, err := s.shop(ctx, c.Shop); err != nil {
		return err
	}
	if p.UID == c.Customer || p.IsAdmin() {
		return nil
	}
	ok, err := s.store.IsAgent(ctx, c.Shop, p.UID)
	if err != nil {
		return fmt.Errorf("check agent: %w", err)
	}
	if !ok {
		return errorf(ErrForbidden, "you are not a participant of %s", c)
	}
	return nil
}

// readEvent tells the other side of a service conversation that p read
// it: the current ticket's agent when the customer reads, the customer
// when an agent does.
func (s *Support) readEvent(ctx context.Context, p Principal, c topics.Conv, ev wire.ReadEvent) {
	if p.UID != c.Customer {
		s.deliver(ev, topics.Inbox(c.Customer))
		return
	}
	t, ok, err := s.store.CurrentTicket(ctx, c.Shop, c.Customer)
	if err != nil {
		s.log.Warn("read event: current ticket", "conv", c.String(), "error", err)
		return
	}
	if ok && t.Agent != 0 {
		s.deliver(ev, topics.Inbox(t.Agent))
	}
}

// typingTargets returns who hears that p types in a service
// conversation: the current ticket's agent when the customer types, the
// customer when an agent does.
func (s *Support) typingTargets(ctx context.Context, p Principal, c topics.Conv) ([]string, error) {
	if p.UID != c.Customer {
		return []string{topics.Inbox(c.Customer)}, nil
	}
	t, ok, err := s.store.CurrentTicket(ctx, c.Shop, c.Customer)
	if err != nil || !ok || t.Agent == 0 {
		return nil, err
	}
	return []string{topics.Inbox(t.Agent)}, nil
}

func jsonString(s string) (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode text: %w", err)
	}
	return b, nil
}
