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

// Limits of shop settings.
const (
	maxShopName       = 64
	maxKeywordReplies = 100
	maxKeyword        = 64
	maxSessionsPage   = 500
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
func (s *Service) shop(ctx context.Context, id int64) (Shop, error) {
	shop, err := s.store.Shop(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Shop{}, errorf(ErrNotFound, "there is no shop %d", id)
	}
	if err != nil {
		return Shop{}, fmt.Errorf("shop %d: %w", id, err)
	}
	return shop, nil
}

// CreateShop creates a shop (admin only).
func (s *Service) CreateShop(ctx context.Context, p Principal, f ShopFields) (Shop, error) {
	if err := requireAdmin(p); err != nil {
		return Shop{}, err
	}
	if f.Name == nil {
		return Shop{}, errorf(ErrInvalid, "name is required")
	}
	shop := Shop{CreatedAt: s.nowMillis(), KeywordReplies: []KeywordReply{}}
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
func (s *Service) UpdateShop(ctx context.Context, p Principal, id int64, f ShopFields) (Shop, error) {
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
func (s *Service) Shops(ctx context.Context, p Principal) ([]ShopView, error) {
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

// ShopFor returns one shop for p.
func (s *Service) ShopFor(ctx context.Context, p Principal, id int64) (ShopView, error) {
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
func (s *Service) AddAgent(ctx context.Context, p Principal, shop, uid int64) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if _, err := s.shop(ctx, shop); err != nil {
		return err
	}
	if err := s.userExists(ctx, uid); err != nil {
		return err
	}
	if err := s.store.AddAgent(ctx, shop, uid, s.nowMillis()); err != nil {
		return fmt.Errorf("add agent: %w", err)
	}
	s.drain(ctx, shop)
	return nil
}

// RemoveAgent removes uid from the shop's agents (admin only). Its open
// sessions of that shop go back to the queue, which then drains to the
// available agents; it gets cs_transferred for each.
func (s *Service) RemoveAgent(ctx context.Context, p Principal, shop, uid int64) error {
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
	open, err := s.store.Sessions(ctx, shop, SessionOpen, 0)
	if err != nil {
		return fmt.Errorf("sessions of shop %d: %w", shop, err)
	}
	for _, sess := range open {
		if sess.Agent == uid {
			if err := s.requeue(ctx, sess); err != nil {
				return err
			}
		}
	}
	s.drain(ctx, shop)
	return nil
}

// requeue puts an open session back in the queue and tells its agent.
func (s *Service) requeue(ctx context.Context, q Session) error {
	defer s.locks.lock(topics.ServiceConv(q.Shop, q.Customer))()
	var sess Session
	err := s.store.InServiceTx(ctx, func(tx ServiceTx) error {
		if _, err := tx.LockShop(ctx, q.Shop); err != nil {
			return err
		}
		var err error
		if sess, err = tx.LockSession(ctx, q.ID); err != nil || sess.Agent != q.Agent || sess.Status != SessionOpen {
			sess.ID = 0
			return err
		}
		sess.Agent, sess.Status = 0, SessionQueued
		return tx.UpdateSession(ctx, sess)
	})
	if err != nil {
		return fmt.Errorf("requeue session %d: %w", q.ID, err)
	}
	if sess.ID != 0 {
		s.deliver(sessionEvent(wire.EventCSTransferred, sess), topics.Inbox(q.Agent))
	}
	return nil
}

// AgentView is an agent as GET /shops/{id}/agents shows it.
type AgentView struct {
	Agent
	Online bool
}

// requireShopStaff returns nil if p is an admin or an agent of the shop.
func (s *Service) requireShopStaff(ctx context.Context, p Principal, shop int64) error {
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
func (s *Service) Agents(ctx context.Context, p Principal, shop int64) ([]AgentView, error) {
	if err := s.requireShopStaff(ctx, p, shop); err != nil {
		return nil, err
	}
	agents, err := s.store.Agents(ctx, shop)
	if err != nil {
		return nil, fmt.Errorf("agents of shop %d: %w", shop, err)
	}
	out := make([]AgentView, len(agents))
	for i, a := range agents {
		out[i] = AgentView{Agent: a, Online: s.Online(a.UID)}
	}
	return out, nil
}

// Sessions lists the shop's sessions, optionally of one status (agents of
// the shop and admins).
func (s *Service) Sessions(ctx context.Context, p Principal, shop int64, status string) ([]Session, error) {
	switch status {
	case "", SessionQueued, SessionOpen, SessionClosed:
	default:
		return nil, errorf(ErrInvalid, "status must be queued, open or closed")
	}
	if err := s.requireShopStaff(ctx, p, shop); err != nil {
		return nil, err
	}
	out, err := s.store.Sessions(ctx, shop, status, maxSessionsPage)
	if err != nil {
		return nil, fmt.Errorf("sessions of shop %d: %w", shop, err)
	}
	return out, nil
}

// SetStatus records p's online/away choice. An away agent gets no new
// sessions; coming back drains its shops' queues.
func (s *Service) SetStatus(ctx context.Context, p Principal, status string) error {
	if status != StatusOnline && status != StatusAway {
		return errorf(ErrInvalid, "status must be online or away")
	}
	if err := s.store.SetUserStatus(ctx, p.UID, status); err != nil {
		return fmt.Errorf("set status: %w", err)
	}
	if status == StatusOnline {
		s.drainAgentShops(ctx, p.UID)
	}
	return nil
}

// sessionForStaff loads a session and checks that p is an agent of its shop
// or an admin.
func (s *Service) sessionForStaff(ctx context.Context, p Principal, id int64) (Session, error) {
	sess, err := s.store.Session(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return Session{}, errorf(ErrNotFound, "there is no session %d", id)
	}
	if err != nil {
		return Session{}, fmt.Errorf("session %d: %w", id, err)
	}
	if err := s.requireShopStaff(ctx, p, sess.Shop); err != nil {
		return Session{}, err
	}
	return sess, nil
}

// Transfer gives a session to another agent of its shop: the old agent and
// the customer get cs_transferred, the new agent cs_assigned and the
// session's messages it has not been sent.
func (s *Service) Transfer(ctx context.Context, p Principal, id, to int64) error {
	q, err := s.sessionForStaff(ctx, p, id)
	if err != nil {
		return err
	}
	if to <= 0 {
		return errorf(ErrInvalid, "to must be the uid of an agent of shop %d", q.Shop)
	}
	if ok, err := s.store.IsAgent(ctx, q.Shop, to); err != nil {
		return fmt.Errorf("check agent: %w", err)
	} else if !ok {
		return errorf(ErrInvalid, "user %d is not an agent of shop %d", to, q.Shop)
	}
	defer s.locks.lock(topics.ServiceConv(q.Shop, q.Customer))()
	var r routed
	err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
		r = routed{}
		if _, err := tx.LockShop(ctx, q.Shop); err != nil {
			return err
		}
		sess, err := tx.LockSession(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case sess.Status == SessionClosed:
			return errorf(ErrConflict, "session %d is closed", id)
		case sess.Agent == to:
			return errorf(ErrInvalid, "session %d is already assigned to %d", id, to)
		}
		_, err = s.assign(ctx, tx, sess, to, &r)
		return err
	})
	if err != nil {
		return fmt.Errorf("transfer session %d: %w", id, err)
	}
	s.deliverRouted(r, 0)
	return nil
}

// Close ends a session: cs_closed goes to the customer and the agent. The
// customer's next message opens a new session. Closing a closed session
// does nothing.
func (s *Service) Close(ctx context.Context, p Principal, id int64) error {
	q, err := s.sessionForStaff(ctx, p, id)
	if err != nil {
		return err
	}
	defer s.locks.lock(topics.ServiceConv(q.Shop, q.Customer))()
	var sess Session
	closed := false
	err = s.store.InServiceTx(ctx, func(tx ServiceTx) error {
		var err error
		if sess, err = tx.LockSession(ctx, id); err != nil || sess.Status == SessionClosed {
			return err
		}
		sess.Status, sess.ClosedAt, closed = SessionClosed, s.nowMillis(), true
		return tx.UpdateSession(ctx, sess)
	})
	if err != nil {
		return fmt.Errorf("close session %d: %w", id, err)
	}
	if closed {
		targets := []string{topics.Inbox(sess.Customer)}
		if sess.Agent != 0 {
			targets = append(targets, topics.Inbox(sess.Agent))
		}
		s.deliver(sessionEvent(wire.EventCSClosed, sess), targets...)
	}
	return nil
}

// canReadService returns nil if p may read a service conversation: its
// customer, the shop's agents, and admins.
func (s *Service) canReadService(ctx context.Context, p Principal, c topics.Conv) error {
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

// serviceReadEvent tells the other side of a service conversation that p
// read it: the session's agent when the customer reads, the customer when
// an agent does.
func (s *Service) serviceReadEvent(ctx context.Context, p Principal, c topics.Conv, ev wire.ReadEvent) {
	if p.UID != c.Customer {
		s.deliver(ev, topics.Inbox(c.Customer))
		return
	}
	sess, ok, err := s.store.CurrentSession(ctx, c.Shop, c.Customer)
	if err != nil {
		s.log.Warn("read event: current session", "conv", c.String(), "error", err)
		return
	}
	if ok && sess.Agent != 0 {
		s.deliver(ev, topics.Inbox(sess.Agent))
	}
}

func jsonString(s string) (json.RawMessage, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode text: %w", err)
	}
	return b, nil
}
