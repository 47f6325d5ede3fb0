package im

import (
	"context"

	"github.com/imserver/imserver/wire"
)

// RoomStore keeps rooms and their members.
type RoomStore interface{}

// sendRoom stores a group message from p in room and delivers it to the
// room topic.
func (s *Service) sendRoom(ctx context.Context, p Principal, room int64, msg wire.Publish) (wire.Envelope, error) {
	return wire.Envelope{}, errorf(ErrForbidden, "you are not a member of room %d", room)
}

// canReadRoom returns nil if p may read room's conversation.
func (s *Service) canReadRoom(ctx context.Context, p Principal, room int64) error {
	return errorf(ErrForbidden, "you are not a member of room %d", room)
}

// mayReceiveRoom reports whether p may subscribe to and receive room's
// topic. It runs for every delivery: no database access.
func (s *Service) mayReceiveRoom(p Principal, room int64) bool { return false }
