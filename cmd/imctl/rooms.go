package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/imserver/imserver/clients"
)

func parseID(what, s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimPrefix(s, "room:"), "shop:"), 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive number", what, s)
	}
	return n, nil
}

func (c *cli) rooms(ctx context.Context, args []string) error {
	var private bool
	pos, err := c.flags("rooms", args, func(fs *flag.FlagSet) { fs.BoolVar(&private, "private", false, "create a private room") }, 0)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	sub := "list"
	if len(pos) > 0 {
		sub, pos = pos[0], pos[1:]
	}
	need := func(n int) error {
		if len(pos) < n {
			return fmt.Errorf("rooms %s: missing arguments (imctl help)", sub)
		}
		return nil
	}
	switch sub {
	case "list":
		rooms, err := api.Rooms(ctx)
		if err != nil {
			return err
		}
		for _, r := range rooms {
			if c.json {
				if err := c.printJSON(r); err != nil {
					return err
				}
				continue
			}
			c.say("room:%-6d %-24s owner uid %d%s", r.RoomID, r.Name, r.Owner, map[bool]string{true: " (private)"}[r.Private])
		}
		if len(rooms) == 0 && !c.json {
			c.say("(no rooms)")
		}
		return nil
	case "create":
		if err := need(1); err != nil {
			return err
		}
		r, err := api.CreateRoom(ctx, strings.Join(pos, " "), private)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(r)
		}
		c.say("created room:%d %q", r.RoomID, r.Name)
		return nil
	case "members":
		if err := need(1); err != nil {
			return err
		}
		id, err := parseID("room", pos[0])
		if err != nil {
			return err
		}
		members, err := api.RoomMembers(ctx, id)
		if err != nil {
			return err
		}
		for _, m := range members {
			if c.json {
				if err := c.printJSON(m); err != nil {
					return err
				}
				continue
			}
			c.say("uid %-6d %-24s %s", m.UID, m.Username, m.Role)
		}
		return nil
	case "add", "remove":
		if err := need(2); err != nil {
			return err
		}
		id, err := parseID("room", pos[0])
		if err != nil {
			return err
		}
		uid, err := parseID("uid", pos[1])
		if err != nil {
			return err
		}
		if sub == "add" {
			err = api.AddRoomMember(ctx, id, uid)
		} else {
			err = api.RemoveRoomMember(ctx, id, uid)
		}
		if err != nil {
			return err
		}
		c.say("room:%d: %sed uid %d", id, strings.TrimSuffix(sub, "e"), uid)
		return nil
	}
	return fmt.Errorf("rooms %s: unknown (list, create, members, add, remove)", sub)
}

func (c *cli) join(ctx context.Context, args []string) error { return c.membership(ctx, "join", args) }

func (c *cli) leave(ctx context.Context, args []string) error {
	return c.membership(ctx, "leave", args)
}

func (c *cli) membership(ctx context.Context, verb string, args []string) error {
	pos, err := c.flags(verb, args, nil, 1)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	id, err := parseID("room", pos[0])
	if err != nil {
		return err
	}
	if verb == "join" {
		err = api.JoinRoom(ctx, id)
	} else {
		err = api.LeaveRoom(ctx, id)
	}
	if err != nil {
		return err
	}
	c.say("%sed room:%d", map[string]string{"join": "join", "leave": "left"}[verb], id)
	return nil
}

func (c *cli) shop(ctx context.Context, args []string) error {
	var welcome, offline, status string
	pos, err := c.flags("shop", args, func(fs *flag.FlagSet) {
		fs.StringVar(&welcome, "welcome", "", "welcome message of a new shop")
		fs.StringVar(&offline, "offline", "", "message to customers when no agent is online")
		fs.StringVar(&status, "status", "", "sessions: queued, open or closed")
	}, 1)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	sub, pos := pos[0], pos[1:]
	need := func(n int) error {
		if len(pos) < n {
			return fmt.Errorf("shop %s: missing arguments (imctl help)", sub)
		}
		return nil
	}
	ids := func(names ...string) ([]int64, error) {
		if err := need(len(names)); err != nil {
			return nil, err
		}
		out := make([]int64, len(names))
		for i, n := range names {
			v, err := parseID(n, pos[i])
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	list := func(items []any) error {
		for _, it := range items {
			if err := c.printJSON(it); err != nil {
				return err
			}
		}
		return nil
	}
	switch sub {
	case "list":
		shops, err := api.Shops(ctx)
		if err != nil {
			return err
		}
		for _, s := range shops {
			if c.json {
				if err := c.printJSON(s); err != nil {
					return err
				}
				continue
			}
			c.say("shop:%-6d %s", s.ShopID, s.Name)
		}
		return nil
	case "show":
		id, err := ids("shop")
		if err != nil {
			return err
		}
		s, err := api.Shop(ctx, id[0])
		if err != nil {
			return err
		}
		return c.printJSON(s)
	case "create":
		if err := need(1); err != nil {
			return err
		}
		set := clients.ShopSettings{Name: clients.String(strings.Join(pos, " "))}
		if welcome != "" {
			set.WelcomeMessage = &welcome
		}
		if offline != "" {
			set.OfflineMessage = &offline
		}
		s, err := api.CreateShop(ctx, set)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(s)
		}
		c.say("created shop:%d %q", s.ShopID, s.Name)
		return nil
	case "add-agent", "remove-agent":
		id, err := ids("shop", "uid")
		if err != nil {
			return err
		}
		if sub == "add-agent" {
			err = api.AddAgent(ctx, id[0], id[1])
		} else {
			err = api.RemoveAgent(ctx, id[0], id[1])
		}
		if err != nil {
			return err
		}
		c.say("shop:%d: %s uid %d", id[0], sub, id[1])
		return nil
	case "agents":
		id, err := ids("shop")
		if err != nil {
			return err
		}
		agents, err := api.Agents(ctx, id[0])
		if err != nil {
			return err
		}
		if c.json {
			items := make([]any, len(agents))
			for i := range agents {
				items[i] = agents[i]
			}
			return list(items)
		}
		for _, a := range agents {
			c.say("uid %-6d %-24s online=%-5v %-7s open sessions %d", a.UID, a.Username, a.Online, a.Status, a.OpenSessions)
		}
		return nil
	case "sessions":
		id, err := ids("shop")
		if err != nil {
			return err
		}
		sessions, err := api.Sessions(ctx, id[0], status)
		if err != nil {
			return err
		}
		if c.json {
			items := make([]any, len(sessions))
			for i := range sessions {
				items[i] = sessions[i]
			}
			return list(items)
		}
		for _, s := range sessions {
			c.say("session %-6d customer uid %-6d agent uid %-6d %s", s.SessionID, s.Customer, s.Agent, s.Status)
		}
		return nil
	case "transfer":
		id, err := ids("session", "uid")
		if err != nil {
			return err
		}
		if err := api.TransferSession(ctx, id[0], id[1]); err != nil {
			return err
		}
		c.say("session %d transferred to uid %d", id[0], id[1])
		return nil
	case "close":
		id, err := ids("session")
		if err != nil {
			return err
		}
		if err := api.CloseSession(ctx, id[0]); err != nil {
			return err
		}
		c.say("session %d closed", id[0])
		return nil
	case "send":
		if err := need(2); err != nil {
			return err
		}
		return c.post(ctx, "shop:"+strings.TrimPrefix(pos[0], "shop:"), strings.Join(pos[1:], " "), "")
	case "reply":
		id, err := ids("shop", "customer")
		if err != nil {
			return err
		}
		if len(pos) < 3 {
			return fmt.Errorf("shop reply: no text")
		}
		return c.post(ctx, fmt.Sprintf("s:%d:%d", id[0], id[1]), strings.Join(pos[2:], " "), "")
	}
	return fmt.Errorf("shop %s: unknown (imctl help)", sub)
}
