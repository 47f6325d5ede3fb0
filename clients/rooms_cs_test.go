package clients_test

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/imserver/imserver/clients"
	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/topics"
	"github.com/imserver/imserver/wire"
)

// skipWithout skips a test on a server that lacks an API (rooms and
// customer service are built on other branches): GET path answers 404
// "no such endpoint" there.
func skipWithout(t *testing.T, s *imtest.Server, path string, u imtest.User) {
	t.Helper()
	status, body := s.Do(t, http.MethodGet, path, u.Token, nil)
	if status == http.StatusNotFound && imtest.ErrorCode(body) == wire.HTTPNotFound {
		t.Skipf("this server has no %s API yet: %s", path, body)
	}
}

func TestRooms(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	skipWithout(t, s, "/api/v1/rooms", alice)

	ca, _ := dial(t, s, alice, clients.Options{})
	cb, rb := dial(t, s, bob, clients.Options{})
	room, err := ca.API().CreateRoom(ctxT(t), "general", false)
	if err != nil {
		t.Fatal(err)
	}
	if room.RoomID == 0 || room.Owner != alice.UID || room.Private {
		t.Fatalf("room %+v", room)
	}
	if err := cb.JoinRoom(ctxT(t), room.RoomID); err != nil {
		t.Fatal(err)
	}
	conv := topics.RoomConv(room.RoomID)
	for i := range 3 {
		env, err := ca.SendRoom(ctxT(t), room.RoomID, clients.Text(fmt.Sprint("hello room ", i)))
		if err != nil {
			t.Fatal(err)
		}
		if env.Conv != conv || env.Room != room.RoomID {
			t.Fatalf("envelope %+v", env)
		}
	}
	checkInOrder(t, rb.waitMessages(t, conv, 3), 3)
	got, err := cb.API().RoomMembers(ctxT(t), room.RoomID)
	if err != nil || len(got) != 2 {
		t.Fatalf("members %+v, %v", got, err)
	}
	if err := cb.LeaveRoom(ctxT(t), room.RoomID); err != nil {
		t.Fatal(err)
	}
	if _, err := cb.SendRoom(ctxT(t), room.RoomID, clients.Text("still here?")); !errors.Is(err, clients.ErrForbidden) {
		t.Fatalf("send after leaving: %v, want ErrForbidden", err)
	}
}

func TestCustomerService(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	agent, customer := s.Register(t, "agent"), s.Register(t, "customer")
	skipWithout(t, s, "/api/v1/shops", agent)

	admin := clients.NewAPI(s.URL, nil).WithToken(s.Admin.Token)
	shop, err := admin.CreateShop(ctxT(t), wire.ShopInput{Name: clients.String("Shop"), WelcomeMessage: clients.String("welcome!")})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.AddAgent(ctxT(t), shop.ShopID, agent.UID); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var assigned []wire.SessionEvent
	ra := &recorder{}
	h := ra.handlers()
	h.CSAssigned = func(ev wire.SessionEvent) { mu.Lock(); assigned = append(assigned, ev); mu.Unlock() }
	o := clients.Options{Server: s.URL, Token: token(agent), Handlers: h}
	ca, err := clients.Dial(ctxT(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	cc, rc := dial(t, s, customer, clients.Options{})

	env, err := cc.SendShop(ctxT(t), shop.ShopID, clients.Text("where is my order?"))
	if err != nil {
		t.Fatal(err)
	}
	conv := topics.ServiceConv(shop.ShopID, customer.UID)
	if env.Conv != conv || env.Shop != shop.ShopID || env.Customer != customer.UID {
		t.Fatalf("envelope %+v", env)
	}
	got := ra.waitMessages(t, conv, 1)
	if got[len(got)-1].Conv != conv {
		t.Fatalf("agent got %+v", got)
	}
	reply, err := ca.Reply(ctxT(t), shop.ShopID, customer.UID, clients.Text("on its way"))
	if err != nil {
		t.Fatal(err)
	}
	imtest.WaitFor(t, 10*time.Second, func() error {
		for _, m := range rc.messages(conv) {
			if m.ID == reply.ID {
				return nil
			}
		}
		return errors.New("the customer has not received the reply")
	})
	agents, err := ca.API().Agents(ctxT(t), shop.ShopID)
	if err != nil || len(agents) != 1 || agents[0].OpenSessions != 1 {
		t.Fatalf("agents %+v, %v", agents, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(assigned) == 0 || assigned[0].Conv != conv {
		t.Fatalf("cs_assigned events %+v", assigned)
	}
}

// The SDK sends the contract's wire.ShopInput: a nil field leaves a setting
// as it is, and an empty list clears the keyword replies.
func TestShopSettingsCanBeCleared(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	admin := clients.NewAPI(s.URL, nil).WithToken(s.Admin.Token)
	krs := []wire.KeywordReply{{Keyword: "price", Reply: "see the list"}}
	shop, err := admin.CreateShop(ctxT(t), wire.ShopInput{Name: clients.String("Shop"), WelcomeMessage: clients.String("hi"), KeywordReplies: &krs})
	if err != nil || len(*shop.KeywordReplies) != 1 {
		t.Fatalf("create: %+v, %v", shop, err)
	}
	if err := admin.UpdateShop(ctxT(t), shop.ShopID, wire.ShopInput{OfflineMessage: clients.String("closed")}); err != nil {
		t.Fatal(err)
	}
	got, err := admin.Shop(ctxT(t), shop.ShopID)
	if err != nil || len(*got.KeywordReplies) != 1 || *got.WelcomeMessage != "hi" || *got.OfflineMessage != "closed" {
		t.Fatalf("a PATCH of one field changed others: %+v, %v", got, err)
	}
	if err := admin.UpdateShop(ctxT(t), shop.ShopID, wire.ShopInput{KeywordReplies: &[]wire.KeywordReply{}}); err != nil {
		t.Fatal(err)
	}
	if got, err = admin.Shop(ctxT(t), shop.ShopID); err != nil || len(*got.KeywordReplies) != 0 || *got.WelcomeMessage != "hi" {
		t.Fatalf("keyword replies not cleared: %+v, %v", got, err)
	}
}
