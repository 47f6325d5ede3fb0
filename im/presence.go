package im

import "sync"

// presence counts each user's live MQTT connections. A user is online while
// the count is positive: several devices count once, and a session taken
// over by a reconnect never reads as offline because the new connection is
// counted before the old one is released.
type presence struct {
	mu    sync.Mutex
	conns map[int64]int
}

// add counts one more connection of uid and reports whether uid just came
// online.
func (pr *presence) add(uid int64) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.conns == nil {
		pr.conns = make(map[int64]int)
	}
	pr.conns[uid]++
	return pr.conns[uid] == 1
}

// remove counts one connection less and reports whether uid just went
// offline.
func (pr *presence) remove(uid int64) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.conns[uid] <= 1 {
		delete(pr.conns, uid)
		return true
	}
	pr.conns[uid]--
	return false
}

func (pr *presence) online(uid int64) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.conns[uid] > 0
}

// ClientConnected records that one of p's MQTT clients connected.
func (s *Service) ClientConnected(p Principal) {
	if s.presence.add(p.UID) {
		s.cameOnline(p)
	}
}

// ClientDisconnected records that one of p's MQTT clients went away.
func (s *Service) ClientDisconnected(p Principal) {
	if s.presence.remove(p.UID) {
		s.wentOffline(p)
	}
}

// Online reports whether uid has at least one live MQTT connection.
func (s *Service) Online(uid int64) bool { return s.presence.online(uid) }
