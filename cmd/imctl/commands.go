package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

const usage = `Usage: imctl [--server URL] [--config FILE] [--json] COMMAND [ARGS]

Account:
  register USER [--password P]      create an account and log in (password read from stdin if not given)
  login USER [--password P]         log in; the server and token are remembered
  logout                            forget the token
  whoami                            show the logged-in user
  status online|away                an agent's availability for new customer-service sessions

Messages (TARGET is a uid for a single chat, room:ID, shop:ID, or a conversation id u:A:B, r:ID, s:SHOP:CUSTOMER, sys):
  send TARGET TEXT...               send a text message
  listen [--count N] [--from-now]   print messages and events as they arrive, resuming where the last listen stopped
  history TARGET [--limit N] [--after SEQ] [--before SEQ]
  conversations                     your conversations with unread counts (alias: convs)
  read TARGET SEQ                   mark read up to SEQ

Rooms:
  rooms                             rooms you are a member of
  rooms create NAME [--private]     create a room
  rooms members ROOM                list members
  rooms add ROOM UID | rooms remove ROOM UID   (owner)
  join ROOM | leave ROOM

Admin and customer service:
  broadcast TEXT...                 send a system broadcast (admin)
  shop list | shop show SHOP
  shop create NAME [--welcome TEXT] [--offline TEXT]   (admin)
  shop add-agent SHOP UID | shop remove-agent SHOP UID  (admin)
  shop agents SHOP | shop sessions SHOP [--status queued|open|closed]
  shop transfer SESSION UID | shop close SESSION
  shop send SHOP TEXT...            as a customer, write to a shop
  shop reply SHOP CUSTOMER TEXT...  as an agent, answer a customer

Global flags:
`

// cli is one run of imctl.
type cli struct {
	env
	cfgPath string
	cfg     config
	json    bool
}

func run(ctx context.Context, args []string, e env) error {
	c := &cli{env: e}
	fs := flag.NewFlagSet("imctl", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	server := fs.String("server", "", "server URL, e.g. http://127.0.0.1:8080 (remembered; default the remembered one, else $IMCTL_SERVER, else http://127.0.0.1:8080)")
	mqtt := fs.String("mqtt", "", "MQTT broker URL for listen, e.g. tcp://127.0.0.1:1883 (remembered; default WebSocket on the server's port)")
	cfgFlag := fs.String("config", "", "config file (default $IMCTL_CONFIG, else imctl/config.json in the user config directory)")
	fs.BoolVar(&c.json, "json", false, "print JSON, one object per line")
	fs.Usage = func() {
		fmt.Fprint(e.stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if c.cfgPath, err = configPath(*cfgFlag, e.getenv); err != nil {
		return err
	}
	if c.cfg, err = loadConfig(c.cfgPath); err != nil {
		return err
	}
	switch {
	case *server != "":
		if *server != c.cfg.Server {
			c.cfg.Positions = nil
		}
		c.cfg.Server = strings.TrimRight(*server, "/")
	case c.cfg.Server == "" && e.getenv("IMCTL_SERVER") != "":
		c.cfg.Server = e.getenv("IMCTL_SERVER")
	case c.cfg.Server == "":
		c.cfg.Server = "http://127.0.0.1:8080"
	}
	if *mqtt != "" {
		c.cfg.MQTT = *mqtt
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errors.New("no command given")
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	commands := map[string]func(context.Context, []string) error{
		"register": c.register, "login": c.login, "logout": c.logout, "whoami": c.whoami, "status": c.status,
		"send": c.send, "listen": c.listen, "history": c.history, "conversations": c.conversations, "convs": c.conversations,
		"read": c.read, "rooms": c.rooms, "join": c.join, "leave": c.leave, "broadcast": c.broadcast, "shop": c.shop,
	}
	if cmd == "help" {
		fs.Usage()
		return nil
	}
	f, ok := commands[cmd]
	if !ok {
		return fmt.Errorf("unknown command %q (imctl help lists them)", cmd)
	}
	return f(ctx, rest)
}

// flags parses a command's own flags; --json is accepted after the command too.
func (c *cli) flags(name string, args []string, define func(fs *flag.FlagSet), minArgs int) ([]string, error) {
	fs := flag.NewFlagSet("imctl "+name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.BoolVar(&c.json, "json", c.json, "print JSON")
	if define != nil {
		define(fs)
	}
	// Flags may come after the positional arguments too: imctl history 3 --limit 5.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		if consumed := len(args) - fs.NArg(); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, fs.Args()...) // after --, everything is an argument
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < minArgs {
		return nil, fmt.Errorf("%s: missing arguments (imctl help)", name)
	}
	return pos, nil
}

func (c *cli) api() *clients.API { return clients.NewAPI(c.cfg.Server, nil).WithToken(c.cfg.Token) }

func (c *cli) authed() (*clients.API, error) {
	if c.cfg.Token == "" {
		return nil, errors.New("not logged in: run imctl login USER")
	}
	return c.api(), nil
}

func (c *cli) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, string(b))
	return err
}

func (c *cli) say(format string, args ...any) { fmt.Fprintf(c.stdout, format+"\n", args...) }

// password returns the --password value or the first line of stdin.
func (c *cli) password(p string) (string, error) {
	if p != "" {
		return p, nil
	}
	fmt.Fprint(c.stderr, "password: ")
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password given (--password or stdin)")
	}
	return line, nil
}

func (c *cli) register(ctx context.Context, args []string) error {
	var pw string
	pos, err := c.flags("register", args, func(fs *flag.FlagSet) { fs.StringVar(&pw, "password", "", "password (default: read from stdin)") }, 1)
	if err != nil {
		return err
	}
	if pw, err = c.password(pw); err != nil {
		return err
	}
	acc, err := c.api().Register(ctx, pos[0], pw)
	if err != nil {
		return err
	}
	if !c.json {
		c.say("registered %s (uid %d)", acc.Username, acc.UID)
	}
	return c.doLogin(ctx, pos[0], pw)
}

func (c *cli) login(ctx context.Context, args []string) error {
	var pw string
	pos, err := c.flags("login", args, func(fs *flag.FlagSet) { fs.StringVar(&pw, "password", "", "password (default: read from stdin)") }, 1)
	if err != nil {
		return err
	}
	if pw, err = c.password(pw); err != nil {
		return err
	}
	return c.doLogin(ctx, pos[0], pw)
}

func (c *cli) doLogin(ctx context.Context, user, pw string) error {
	tok, err := c.api().Login(ctx, user, pw)
	if err != nil {
		return err
	}
	if tok.UID != c.cfg.UID {
		c.cfg.Positions = nil
	}
	c.cfg.Token, c.cfg.UID, c.cfg.Username, c.cfg.Role = tok.AccessToken, tok.UID, tok.Username, tok.Role
	if err := c.cfg.save(c.cfgPath); err != nil {
		return err
	}
	if c.json {
		return c.printJSON(wire.Account{UID: tok.UID, Username: tok.Username, Role: tok.Role})
	}
	c.say("logged in as %s (uid %d, %s) on %s; token saved in %s", tok.Username, tok.UID, tok.Role, c.cfg.Server, c.cfgPath)
	return nil
}

func (c *cli) logout(context.Context, []string) error {
	c.cfg.Token, c.cfg.Positions = "", nil
	if err := c.cfg.save(c.cfgPath); err != nil {
		return err
	}
	c.say("logged out")
	return nil
}

func (c *cli) whoami(ctx context.Context, args []string) error {
	if _, err := c.flags("whoami", args, nil, 0); err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	acc, err := api.Me(ctx)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(acc)
	}
	c.say("%s (uid %d, %s) on %s", acc.Username, acc.UID, acc.Role, c.cfg.Server)
	return nil
}

func (c *cli) status(ctx context.Context, args []string) error {
	pos, err := c.flags("status", args, nil, 1)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	if err := api.SetStatus(ctx, pos[0]); err != nil {
		return err
	}
	c.say("status: %s", pos[0])
	return nil
}

// conv turns a TARGET into a conversation id.
func (c *cli) conv(target string) (string, error) {
	switch {
	case strings.HasPrefix(target, "room:"):
		target = "r:" + strings.TrimPrefix(target, "room:")
	case strings.HasPrefix(target, "shop:"):
		target = "s:" + strings.TrimPrefix(target, "shop:") + ":" + strconv.FormatInt(c.cfg.UID, 10)
	default:
		if uid, err := strconv.ParseInt(strings.TrimPrefix(target, "@"), 10, 64); err == nil && uid > 0 {
			if uid == c.cfg.UID {
				return "", errors.New("that is you: give another user's uid")
			}
			return topics.SingleConv(c.cfg.UID, uid), nil
		}
	}
	if _, err := topics.ParseConv(target); err != nil {
		return "", fmt.Errorf("%q is not a uid, room:ID, shop:ID or conversation id", target)
	}
	return target, nil
}

func (c *cli) send(ctx context.Context, args []string) error {
	var cid string
	pos, err := c.flags("send", args, func(fs *flag.FlagSet) {
		fs.StringVar(&cid, "cid", "", "client message id (a re-send with the same cid is stored once)")
	}, 2)
	if err != nil {
		return err
	}
	return c.post(ctx, pos[0], strings.Join(pos[1:], " "), cid)
}

func (c *cli) post(ctx context.Context, target, text, cid string) error {
	api, err := c.authed()
	if err != nil {
		return err
	}
	conv, err := c.conv(target)
	if err != nil {
		return err
	}
	msg := clients.Text(text)
	msg.CID = cid
	env, err := api.Post(ctx, conv, msg)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(env)
	}
	c.say("sent %s #%d", env.Conv, env.Seq)
	return nil
}

func (c *cli) history(ctx context.Context, args []string) error {
	var q clients.HistoryQuery
	after := int64(-1)
	pos, err := c.flags("history", args, func(fs *flag.FlagSet) {
		fs.IntVar(&q.Limit, "limit", 20, "messages to show (at most 200)")
		fs.Int64Var(&after, "after", -1, "show the messages after this seq (0: from the start)")
		fs.Int64Var(&q.BeforeSeq, "before", 0, "show the messages before this seq")
	}, 1)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	conv, err := c.conv(pos[0])
	if err != nil {
		return err
	}
	if after >= 0 {
		q.After, q.AfterSeq = true, after
	}
	page, err := api.History(ctx, conv, q)
	if err != nil {
		return err
	}
	for _, m := range page {
		if err := c.printMessage(m); err != nil {
			return err
		}
	}
	if len(page) == 0 && !c.json {
		c.say("(no messages)")
	}
	return nil
}

func (c *cli) conversations(ctx context.Context, args []string) error {
	if _, err := c.flags("conversations", args, nil, 0); err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	convs, err := api.Conversations(ctx)
	if err != nil {
		return err
	}
	for _, cv := range convs {
		if c.json {
			if err := c.printJSON(cv); err != nil {
				return err
			}
			continue
		}
		last := ""
		if cv.LastMessage != nil {
			last = c.describe(*cv.LastMessage)
		}
		c.say("%-16s %-8s last #%-5d unread %-4d %s", cv.Conv, cv.Kind, cv.LastSeq, cv.Unread, last)
	}
	if len(convs) == 0 && !c.json {
		c.say("(no conversations)")
	}
	return nil
}

func (c *cli) read(ctx context.Context, args []string) error {
	pos, err := c.flags("read", args, nil, 2)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	conv, err := c.conv(pos[0])
	if err != nil {
		return err
	}
	seq, err := strconv.ParseInt(pos[1], 10, 64)
	if err != nil {
		return fmt.Errorf("seq %q: not a number", pos[1])
	}
	st, err := api.MarkRead(ctx, conv, seq)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(st)
	}
	c.say("%s read up to #%d, %d unread", st.Conv, st.ReadSeq, st.Unread)
	return nil
}

func (c *cli) broadcast(ctx context.Context, args []string) error {
	pos, err := c.flags("broadcast", args, nil, 1)
	if err != nil {
		return err
	}
	api, err := c.authed()
	if err != nil {
		return err
	}
	env, err := api.Broadcast(ctx, strings.Join(pos, " "))
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(env)
	}
	c.say("broadcast sent (#%d)", env.Seq)
	return nil
}

// listen prints messages and events as they arrive until ctx ends or
// --count messages came. It resumes after the positions the last listen
// saved, so nothing sent in between is missed.
func (c *cli) listen(ctx context.Context, args []string) error {
	var count int
	var fromNow bool
	if _, err := c.flags("listen", args, func(fs *flag.FlagSet) {
		fs.IntVar(&count, "count", 0, "exit after this many messages (0: until interrupted)")
		fs.BoolVar(&fromNow, "from-now", false, "ignore what arrived since the last listen")
	}, 0); err != nil {
		return err
	}
	if c.cfg.Token == "" {
		return errors.New("not logged in: run imctl login USER")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	seen := 0
	out := func(f func() error) {
		mu.Lock()
		defer mu.Unlock()
		if err := f(); err != nil {
			cancel()
		}
	}
	event := func(v any, text string) {
		out(func() error {
			if c.json {
				return c.printJSON(v)
			}
			_, err := fmt.Fprintln(c.stdout, "* "+text)
			return err
		})
	}
	positions := c.cfg.Positions
	if fromNow {
		positions = nil
	}
	h := clients.Handlers{
		Message: func(m wire.Envelope) {
			out(func() error {
				seen++
				if count > 0 && seen >= count {
					defer cancel()
				}
				return c.printMessage(m)
			})
		},
		Error: func(e *clients.Error) {
			event(map[string]string{"event": "error", "code": e.Code, "message": e.Message}, "refused: "+e.Error())
		},
		Read: func(ev wire.ReadEvent) { event(ev, fmt.Sprintf("uid %d read %s up to #%d", ev.UID, ev.Conv, ev.Seq)) },
		CSAssigned: func(ev wire.SessionEvent) {
			event(ev, fmt.Sprintf("session %d of shop %d with customer %d assigned to agent %d (%s)", ev.Session, ev.Shop, ev.Customer, ev.Agent, ev.Conv))
		},
		CSTransferred: func(ev wire.SessionEvent) {
			event(ev, fmt.Sprintf("session %d transferred to agent %d (%s)", ev.Session, ev.Agent, ev.Conv))
		},
		CSClosed:   func(ev wire.SessionEvent) { event(ev, fmt.Sprintf("session %d closed (%s)", ev.Session, ev.Conv)) },
		RoomMember: func(ev wire.RoomMemberEvent) { event(ev, fmt.Sprintf("uid %d %s room %d", ev.UID, ev.Action, ev.Room)) },
		Disconnected: func(err error) {
			fmt.Fprintf(c.stderr, "imctl: connection lost (%v); reconnecting\n", err)
		},
	}
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	cl, err := clients.Dial(dctx, clients.Options{
		Server: c.cfg.Server, Broker: c.cfg.MQTT, AllRooms: true, Positions: positions, Handlers: h,
		Token: wire.Token{AccessToken: c.cfg.Token, UID: c.cfg.UID, Username: c.cfg.Username, Role: c.cfg.Role},
	})
	dcancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "listening as %s (uid %d) on %s; Ctrl-C to stop\n", c.cfg.Username, c.cfg.UID, c.cfg.Server)
	<-ctx.Done()
	pos := cl.Positions()
	cl.Close()
	// Remember where we are, for the next listen.
	latest, err := loadConfig(c.cfgPath)
	if err != nil {
		return err
	}
	if latest.Token == c.cfg.Token {
		latest.Positions = pos
		return latest.save(c.cfgPath)
	}
	return nil
}

func (c *cli) printMessage(m wire.Envelope) error {
	if c.json {
		return c.printJSON(m)
	}
	_, err := fmt.Fprintf(c.stdout, "%s %s #%d %s\n", time.UnixMilli(m.TS).Format("15:04:05"), m.Conv, m.Seq, c.describe(m))
	return err
}

// describe renders a message for people: who, and what.
func (c *cli) describe(m wire.Envelope) string {
	who := "uid " + strconv.FormatInt(m.From, 10)
	switch {
	case m.Auto || m.From == 0:
		who = "auto"
	case m.From == c.cfg.UID:
		who = "you"
	}
	var what string
	switch m.Type {
	case wire.TypeText:
		what = clients.TextOf(m)
	case wire.TypeImage:
		var b wire.ImageBody
		_ = json.Unmarshal(m.Body, &b)
		what = "[image] " + b.URL
	case wire.TypeFile:
		var b wire.FileBody
		_ = json.Unmarshal(m.Body, &b)
		what = "[file " + b.Name + "] " + b.URL
	case wire.TypeCard:
		var b wire.CardBody
		_ = json.Unmarshal(m.Body, &b)
		what = "[card] " + b.Title + " " + b.URL
	default:
		what = "[" + m.Type + "] " + string(m.Body)
	}
	return who + ": " + what
}
