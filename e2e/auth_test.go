package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

func TestHealthz(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	status, body := s.Do(t, "GET", "/healthz", "", nil)
	if status != http.StatusOK || !strings.Contains(string(body), "ok") {
		t.Fatalf("healthz: %d %s", status, body)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		var acc wire.Account
		s.MustDo(t, "POST", "/api/v1/auth/register", "", map[string]string{"username": "Alice_1.x", "password": "secret1"}, http.StatusCreated, &acc)
		if acc.UID <= 0 || acc.Username != "Alice_1.x" {
			t.Fatalf("register answer %+v", acc)
		}
		// Form bodies work too (curl -d).
		resp, err := http.PostForm(s.URL+"/api/v1/auth/register", url.Values{"username": {"bob_form"}, "password": {"secret2"}})
		if err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("form register: %v %v", resp.Status, err)
		}
		resp.Body.Close()

		for _, tc := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"taken, other case", map[string]string{"username": "alice_1.X", "password": "secret1"}, 409, "conflict"},
			{"short username", map[string]string{"username": "ab", "password": "secret1"}, 400, "invalid_request"},
			{"long username", map[string]string{"username": strings.Repeat("a", 33), "password": "secret1"}, 400, "invalid_request"},
			{"bad characters", map[string]string{"username": "al ice", "password": "secret1"}, 400, "invalid_request"},
			{"unicode username", map[string]string{"username": "ålice", "password": "secret1"}, 400, "invalid_request"},
			{"short password", map[string]string{"username": "carol", "password": "12345"}, 400, "invalid_request"},
			{"long password", map[string]string{"username": "carol", "password": strings.Repeat("p", 129)}, 400, "invalid_request"},
			{"missing fields", map[string]string{}, 400, "invalid_request"},
			{"not JSON", "{username:", 400, "invalid_request"},
			{"wrong type", `{"username": 5, "password": "secret1"}`, 400, "invalid_request"},
			{"array body", `[1,2]`, 400, "invalid_request"},
			{"huge body", `{"username":"` + strings.Repeat("a", 200<<10) + `"}`, 413, "payload_too_large"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status, body := s.Do(t, "POST", "/api/v1/auth/register", "", tc.body)
				if status != tc.status || imtest.ErrorCode(body) != tc.code {
					t.Fatalf("status %d %s, want %d %s", status, body, tc.status, tc.code)
				}
			})
		}

		var tok wire.Token
		s.MustDo(t, "POST", "/api/v1/auth/login", "", map[string]string{"username": "ALICE_1.x", "password": "secret1"}, http.StatusOK, &tok)
		if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.ExpiresIn <= 0 || tok.UID != acc.UID || tok.Username != "Alice_1.x" || tok.Role != "user" {
			t.Fatalf("login answer %+v", tok)
		}
		for _, creds := range []map[string]string{
			{"username": "Alice_1.x", "password": "wrong-one"},
			{"username": "nobody", "password": "secret1"},
			{"username": "", "password": ""},
		} {
			status, body := s.Do(t, "POST", "/api/v1/auth/login", "", creds)
			if status != 401 || imtest.ErrorCode(body) != "unauthorized" {
				t.Fatalf("login %v: %d %s", creds, status, body)
			}
		}

		var me wire.Account
		s.MustDo(t, "GET", "/api/v1/me", tok.AccessToken, nil, http.StatusOK, &me)
		if me.UID != acc.UID || me.Role != "user" {
			t.Fatalf("/me = %+v", me)
		}
		s.MustDo(t, "GET", "/api/v1/me?access_token="+tok.AccessToken, "", nil, http.StatusOK, &me)
		var admin wire.Account
		s.MustDo(t, "GET", "/api/v1/me", s.Admin.Token, nil, http.StatusOK, &admin)
		if admin.Role != "admin" || admin.Username != "admin" {
			t.Fatalf("admin /me = %+v", admin)
		}
	})
}

func TestUnauthenticatedRequests(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	u := s.Register(t, "u")
	for _, tc := range []struct{ name, header, query string }{
		{"no token", "", ""},
		{"garbage token", "Bearer garbage", ""},
		{"tampered token", "Bearer " + u.Token[:len(u.Token)-3] + "abc", ""},
		{"basic scheme", "Basic " + u.Token, ""},
		{"garbage query token", "", "?access_token=nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.URL+"/api/v1/me"+tc.query, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	status, body := s.Do(t, "GET", "/api/v1/nope", u.Token, nil)
	if status != 404 || imtest.ErrorCode(body) != "not_found" {
		t.Fatalf("unknown path: %d %s", status, body)
	}
}

func TestMQTTConnectRules(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")
	bad := "not-a-token"
	tampered := alice.Token[:len(alice.Token)-3] + "xyz"
	eachTransport(t, func(t *testing.T, tr imtest.Transport) {
		for _, tc := range []struct {
			name     string
			clientID string
			password *string
		}{
			{"bad token", "", &bad},
			{"tampered token", "", &tampered},
			{"foreign client id", fmt.Sprintf("u%d-phone", bob.UID), nil},
			{"client id without prefix", "phone", nil},
			{"client id of a uid sharing digits", fmt.Sprintf("u%d1-phone", alice.UID), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.Dial(t, alice, imtest.ClientOptions{Transport: tr, ClientID: tc.clientID, Password: tc.password})
				if err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authorized") {
					t.Fatalf("connect: err = %v, want not authorized", err)
				}
			})
		}
		// Allowed: own prefix.
		s.Connect(t, alice, imtest.ClientOptions{Transport: tr, ClientID: fmt.Sprintf("u%d-laptop-%s", alice.UID, tr)})
	})
	t.Run("mqtt5", func(t *testing.T) {
		c, err := s.Dial5(t, alice, "", &bad)
		if err == nil || c.Connack == nil || c.Connack.ReasonCode != 0x87 {
			t.Fatalf("bad token on MQTT 5: err %v connack %+v, want reason 0x87", err, c.Connack)
		}
		c, err = s.Dial5(t, alice, fmt.Sprintf("u%d-x", bob.UID), nil)
		if err == nil || c.Connack == nil || c.Connack.ReasonCode != 0x87 {
			t.Fatalf("foreign id on MQTT 5: err %v connack %+v", err, c.Connack)
		}
		// An empty client id gets one assigned.
		c, err = s.Dial5(t, alice, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c
	})
	t.Run("session takeover by the owner only", func(t *testing.T) {
		id := fmt.Sprintf("u%d-phone", alice.UID)
		first := s.Connect(t, alice, imtest.ClientOptions{ClientID: id})
		if _, err := s.Dial(t, bob, imtest.ClientOptions{ClientID: id}); err == nil {
			t.Fatal("bob took over alice's client id")
		}
		if !first.Paho.IsConnectionOpen() {
			t.Fatal("alice's session was dropped by bob's attempt")
		}
	})
}
