package im

import "github.com/imserver/imserver/topics"

// MayReceive reports whether p may subscribe to topic and receive what is
// delivered on it: their own inbox, the broadcast topic, and the rooms they
// are a member of. Wildcards, $SYS and everything else are refused. The
// broker asks for every delivery to every subscriber, so it must stay
// cheap: no database access.
func (s *Service) MayReceive(p Principal, topic string) bool {
	r, err := topics.Parse(topic)
	if err != nil {
		return false
	}
	switch r.Kind {
	case topics.KindInbox:
		return r.UID == p.UID
	case topics.KindBroadcast:
		return true
	case topics.KindRoom:
		return s.mayReceiveRoom(p, r.Room)
	}
	return false
}
