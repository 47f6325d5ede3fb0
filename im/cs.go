package im

import (
	"context"

	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// ShopStore keeps shops, agents and customer-service sessions.
type ShopStore interface{}

// sendToShop handles a customer's message to a shop's customer service.
func (s *Service) sendToShop(ctx context.Context, p Principal, shop int64, msg wire.Publish) (wire.Envelope, error) {
	return wire.Envelope{}, errorf(ErrNotFound, "there is no shop %d", shop)
}

// sendAgentReply handles an agent's reply to a customer.
func (s *Service) sendAgentReply(ctx context.Context, p Principal, shop, customer int64, msg wire.Publish) (wire.Envelope, error) {
	return wire.Envelope{}, errorf(ErrNotFound, "there is no shop %d", shop)
}

// sendService handles POST /conversations/s:{shop}:{customer}/messages.
func (s *Service) sendService(ctx context.Context, p Principal, c topics.Conv, msg wire.Publish) (wire.Envelope, error) {
	return wire.Envelope{}, errorf(ErrNotFound, "there is no shop %d", c.Shop)
}

// canReadService returns nil if p may read a service conversation.
func (s *Service) canReadService(ctx context.Context, p Principal, c topics.Conv) error {
	return errorf(ErrForbidden, "you are not a participant of %s", c)
}

// serviceReadEvent tells the other side of a service conversation that p
// has read it.
func (s *Service) serviceReadEvent(ctx context.Context, p Principal, c topics.Conv, ev wire.ReadEvent) {
}

// cameOnline runs when p's first MQTT client connects.
func (s *Service) cameOnline(p Principal) {}

// wentOffline runs when p's last MQTT client disconnects.
func (s *Service) wentOffline(p Principal) {}
