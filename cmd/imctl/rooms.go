package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"strings"
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
