package httpapi

import (
	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// The one place the domain's types become the contract's JSON shapes
// (package wire), and request shapes become the domain's inputs.

func envelopes(msgs []im.Message) []wire.Envelope {
	out := make([]wire.Envelope, len(msgs))
	for i, m := range msgs {
		out[i] = m.Envelope()
	}
	return out
}

func account(u im.User, withRole bool) wire.Account {
	a := wire.Account{UID: u.UID, Username: u.Username, Name: u.Name}
	if withRole {
		a.Role = u.Role
	}
	return a
}

func conversations(rows []im.ConversationSummary) []wire.Conversation {
	out := make([]wire.Conversation, len(rows))
	for i, r := range rows {
		out[i] = wire.Conversation{Conv: r.Conv, Kind: string(r.Kind), LastSeq: r.LastSeq, ReadSeq: r.ReadSeq, Unread: r.Unread(),
			PeerReadSeq: min(r.PeerReadSeq, r.LastSeq)}
		if r.LastMessage != nil {
			env := r.LastMessage.Envelope()
			out[i].LastMessage = &env
		}
	}
	return out
}

func readState(p im.ReadPosition) wire.ReadState {
	return wire.ReadState{Conv: p.Conv, ReadSeq: p.ReadSeq, LastSeq: p.LastSeq, Unread: p.Unread()}
}

func room(r im.Room) wire.Room {
	return wire.Room{RoomID: r.ID, Name: r.Name, Owner: r.Owner, Private: r.Private}
}

func rooms(rs []im.Room) []wire.Room {
	out := make([]wire.Room, len(rs))
	for i, r := range rs {
		out[i] = room(r)
	}
	return out
}

func publicRooms(rs []im.PublicRoom) []wire.PublicRoom {
	out := make([]wire.PublicRoom, len(rs))
	for i, r := range rs {
		out[i] = wire.PublicRoom{RoomID: r.ID, Name: r.Name, Owner: r.Owner, Private: r.Private, Members: r.Members}
	}
	return out
}

func member(m im.RoomMember) wire.RoomMember {
	return wire.RoomMember{UID: m.UID, Username: m.Username, Role: m.Role}
}

func members(ms []im.RoomMember) []wire.RoomMember {
	out := make([]wire.RoomMember, len(ms))
	for i, m := range ms {
		out[i] = member(m)
	}
	return out
}

func departure(d im.Departure) wire.Left {
	return wire.Left{RoomID: d.Room, UID: d.UID, Action: d.Action, Owner: d.Owner}
}

// shop shows a shop's settings only to those the domain allows.
func shop(v im.ShopView) wire.Shop {
	out := wire.Shop{ShopID: v.ID, Name: v.Name}
	if v.Settings {
		krs := make([]wire.KeywordReply, len(v.KeywordReplies))
		for i, kr := range v.KeywordReplies {
			krs[i] = wire.KeywordReply(kr)
		}
		out.WelcomeMessage, out.OfflineMessage, out.KeywordReplies = &v.WelcomeMessage, &v.OfflineMessage, &krs
		out.CreatedAt = v.CreatedAt
	}
	return out
}

func shops(vs []im.ShopView) []wire.Shop {
	out := make([]wire.Shop, len(vs))
	for i, v := range vs {
		out[i] = shop(v)
	}
	return out
}

func shopFields(in wire.ShopInput) im.ShopFields {
	f := im.ShopFields{Name: in.Name, WelcomeMessage: in.WelcomeMessage, OfflineMessage: in.OfflineMessage}
	if in.KeywordReplies != nil {
		krs := make([]im.KeywordReply, len(*in.KeywordReplies))
		for i, kr := range *in.KeywordReplies {
			krs[i] = im.KeywordReply(kr)
		}
		f.KeywordReplies = &krs
	}
	return f
}

func agents(as []im.AgentView) []wire.ShopAgent {
	out := make([]wire.ShopAgent, len(as))
	for i, a := range as {
		out[i] = wire.ShopAgent{UID: a.UID, Username: a.Username, Online: a.Online, Status: a.Status, OpenSessions: a.OpenTickets}
	}
	return out
}

func ticket(t im.Ticket) wire.CSSession {
	out := wire.CSSession{SessionID: t.ID, ShopID: t.Shop, Customer: t.Customer, Status: t.Status, CreatedAt: t.CreatedAt}
	if t.Agent != 0 {
		agent := t.Agent
		out.Agent = &agent
	}
	return out
}

func tickets(ts []im.Ticket) []wire.CSSession {
	out := make([]wire.CSSession, len(ts))
	for i, t := range ts {
		out[i] = ticket(t)
	}
	return out
}

func cannedReply(c im.CannedReply) wire.CannedReply {
	return wire.CannedReply{ID: c.ID, Shortcut: c.Shortcut, Text: c.Text}
}

func cannedReplies(cs []im.CannedReply) []wire.CannedReply {
	out := make([]wire.CannedReply, len(cs))
	for i, c := range cs {
		out[i] = cannedReply(c)
	}
	return out
}

func customer(c im.Customer) wire.Customer {
	out := wire.Customer{UID: c.UID, Username: c.Username, Name: c.Name, FirstContact: c.FirstContact, Sessions: tickets(c.Tickets)}
	if c.Page != nil {
		out.Page = &wire.PageContext{URL: c.Page.URL, Title: c.Page.Title, UpdatedAt: c.Page.UpdatedAt}
	}
	return out
}
