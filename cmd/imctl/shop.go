package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/wire"
)

// shop runs "imctl shop SUBCOMMAND …": one method of shopCmd per
// subcommand.
func (c *cli) shop(ctx context.Context, args []string) error {
	sc := &shopCmd{cli: c}
	pos, err := c.flags("shop", args, func(fs *flag.FlagSet) {
		fs.StringVar(&sc.welcome, "welcome", "", "welcome message of a new shop")
		fs.StringVar(&sc.offline, "offline", "", "message to customers when no agent is online")
		fs.StringVar(&sc.status, "status", "", "sessions: queued, open or closed")
	}, 1)
	if err != nil {
		return err
	}
	if sc.api, err = c.authed(); err != nil {
		return err
	}
	sc.sub, sc.pos = pos[0], pos[1:]
	run := map[string]func(context.Context) error{
		"list": sc.list, "show": sc.show, "create": sc.create,
		"add-agent": sc.addAgent, "remove-agent": sc.removeAgent, "agents": sc.agents,
		"sessions": sc.sessions, "transfer": sc.transfer, "close": sc.close,
		"send": sc.send, "reply": sc.reply,
	}[sc.sub]
	if run == nil {
		return fmt.Errorf("shop %s: unknown (imctl help)", sc.sub)
	}
	return run(ctx)
}

// shopCmd is one run of "imctl shop": the subcommand, its positional
// arguments and the flags.
type shopCmd struct {
	*cli
	api                      *clients.API
	sub                      string
	pos                      []string
	welcome, offline, status string
}

// need checks that at least n positional arguments were given.
func (sc *shopCmd) need(n int) error {
	if len(sc.pos) < n {
		return fmt.Errorf("shop %s: missing arguments (imctl help)", sc.sub)
	}
	return nil
}

// ids parses the first positional arguments as the ids names.
func (sc *shopCmd) ids(names ...string) ([]int64, error) {
	if err := sc.need(len(names)); err != nil {
		return nil, err
	}
	out := make([]int64, len(names))
	for i, n := range names {
		v, err := parseID(n, sc.pos[i])
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// printEach prints each item as JSON, one per line.
func printEach[T any](c *cli, items []T) error {
	for _, it := range items {
		if err := c.printJSON(it); err != nil {
			return err
		}
	}
	return nil
}

func (sc *shopCmd) list(ctx context.Context) error {
	shops, err := sc.api.Shops(ctx)
	if err != nil {
		return err
	}
	if sc.json {
		return printEach(sc.cli, shops)
	}
	for _, s := range shops {
		sc.say("shop:%-6d %s", s.ShopID, s.Name)
	}
	return nil
}

func (sc *shopCmd) show(ctx context.Context) error {
	id, err := sc.ids("shop")
	if err != nil {
		return err
	}
	s, err := sc.api.Shop(ctx, id[0])
	if err != nil {
		return err
	}
	return sc.printJSON(s)
}

func (sc *shopCmd) create(ctx context.Context) error {
	if err := sc.need(1); err != nil {
		return err
	}
	in := wire.ShopInput{Name: clients.String(strings.Join(sc.pos, " "))}
	if sc.welcome != "" {
		in.WelcomeMessage = &sc.welcome
	}
	if sc.offline != "" {
		in.OfflineMessage = &sc.offline
	}
	s, err := sc.api.CreateShop(ctx, in)
	if err != nil {
		return err
	}
	if sc.json {
		return sc.printJSON(s)
	}
	sc.say("created shop:%d %q", s.ShopID, s.Name)
	return nil
}

func (sc *shopCmd) addAgent(ctx context.Context) error {
	return sc.agentChange(ctx, sc.api.AddAgent)
}

func (sc *shopCmd) removeAgent(ctx context.Context) error {
	return sc.agentChange(ctx, sc.api.RemoveAgent)
}

func (sc *shopCmd) agentChange(ctx context.Context, change func(ctx context.Context, shop, uid int64) error) error {
	id, err := sc.ids("shop", "uid")
	if err != nil {
		return err
	}
	if err := change(ctx, id[0], id[1]); err != nil {
		return err
	}
	sc.say("shop:%d: %s uid %d", id[0], sc.sub, id[1])
	return nil
}

func (sc *shopCmd) agents(ctx context.Context) error {
	id, err := sc.ids("shop")
	if err != nil {
		return err
	}
	agents, err := sc.api.Agents(ctx, id[0])
	if err != nil {
		return err
	}
	if sc.json {
		return printEach(sc.cli, agents)
	}
	for _, a := range agents {
		sc.say("uid %-6d %-24s online=%-5v %-7s open sessions %d", a.UID, a.Username, a.Online, a.Status, a.OpenSessions)
	}
	return nil
}

func (sc *shopCmd) sessions(ctx context.Context) error {
	id, err := sc.ids("shop")
	if err != nil {
		return err
	}
	sessions, err := sc.api.Sessions(ctx, id[0], sc.status)
	if err != nil {
		return err
	}
	if sc.json {
		return printEach(sc.cli, sessions)
	}
	for _, s := range sessions {
		agent := "-"
		if s.Agent != nil {
			agent = fmt.Sprint(*s.Agent)
		}
		sc.say("session %-6d customer uid %-6d agent uid %-6s %s", s.SessionID, s.Customer, agent, s.Status)
	}
	return nil
}

func (sc *shopCmd) transfer(ctx context.Context) error {
	id, err := sc.ids("session", "uid")
	if err != nil {
		return err
	}
	if err := sc.api.TransferSession(ctx, id[0], id[1]); err != nil {
		return err
	}
	sc.say("session %d transferred to uid %d", id[0], id[1])
	return nil
}

func (sc *shopCmd) close(ctx context.Context) error {
	id, err := sc.ids("session")
	if err != nil {
		return err
	}
	if err := sc.api.CloseSession(ctx, id[0]); err != nil {
		return err
	}
	sc.say("session %d closed", id[0])
	return nil
}

func (sc *shopCmd) send(ctx context.Context) error {
	if err := sc.need(2); err != nil {
		return err
	}
	return sc.post(ctx, "shop:"+strings.TrimPrefix(sc.pos[0], "shop:"), strings.Join(sc.pos[1:], " "), "")
}

func (sc *shopCmd) reply(ctx context.Context) error {
	id, err := sc.ids("shop", "customer")
	if err != nil {
		return err
	}
	if len(sc.pos) < 3 {
		return fmt.Errorf("shop reply: no text")
	}
	return sc.post(ctx, fmt.Sprintf("s:%d:%d", id[0], id[1]), strings.Join(sc.pos[2:], " "), "")
}
