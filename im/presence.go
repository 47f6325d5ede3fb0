package im

import (
	"context"
	"sync"
	"time"
)

// presence tracks users' live MQTT clients. A user is online while at least
// one of its clients is connected, and reachable while at least one of them
// is subscribed to its inbox: only then can it be sent anything, so only
// then does the dispatcher give it customer-service sessions. Several
// devices count once, and a session taken over by a reconnect never reads
// as offline, because the new client is counted before the old one is
// released.
type presence struct {
	mu        sync.Mutex
	conns     map[int64]int
	reachable map[int64]int
}

// change adds delta to uid's count in m and returns the count before.
func (pr *presence) change(m *map[int64]int, uid int64, delta int) int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if *m == nil {
		*m = make(map[int64]int)
	}
	before := (*m)[uid]
	if after := before + delta; after > 0 {
		(*m)[uid] = after
	} else {
		delete(*m, uid)
	}
	return before
}

func (pr *presence) count(m map[int64]int, uid int64) int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return m[uid]
}

// ClientConnected records that one of p's MQTT clients connected.
func (s *Service) ClientConnected(p Principal) { s.presence.change(&s.presence.conns, p.UID, 1) }

// ClientDisconnected records that one of p's MQTT clients went away.
func (s *Service) ClientDisconnected(p Principal) { s.presence.change(&s.presence.conns, p.UID, -1) }

// InboxSubscribed records that one of p's clients subscribed to its inbox.
// When it is the first, p has become reachable: the queues of the shops it
// is an agent of are drained to it now.
func (s *Service) InboxSubscribed(p Principal) {
	if s.presence.change(&s.presence.reachable, p.UID, 1) == 0 {
		s.cameOnline(p)
	}
}

// InboxUnsubscribed records that one of p's clients left its inbox
// (unsubscribed or disconnected).
func (s *Service) InboxUnsubscribed(p Principal) {
	s.presence.change(&s.presence.reachable, p.UID, -1)
}

// Online reports whether uid has at least one live MQTT connection.
func (s *Service) Online(uid int64) bool { return s.presence.count(s.presence.conns, uid) > 0 }

// reachable reports whether uid has a live client subscribed to its inbox.
func (s *Service) reachable(uid int64) bool { return s.presence.count(s.presence.reachable, uid) > 0 }

// cameOnline drains, to p, the queues of the shops p is an agent of.
func (s *Service) cameOnline(p Principal) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.drainAgentShops(ctx, p.UID)
}
