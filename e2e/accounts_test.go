package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jmoiron/sqlx"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// assertClosed waits until an MQTT 3.1.1 client's connection is gone.
func assertClosed(t *testing.T, c *imtest.Client, within time.Duration) {
	t.Helper()
	select {
	case <-c.Lost:
	case <-time.After(within):
		t.Fatalf("the connection is still open after %v", within)
	}
}

// assertDisconnected5 waits for an MQTT 5 client's DISCONNECT 0x98.
func assertDisconnected5(t *testing.T, c *imtest.Client5, within time.Duration) {
	t.Helper()
	select {
	case code := <-c.Disconnected:
		if code != 0x98 {
			t.Fatalf("DISCONNECT 0x%02x, want 0x98 administrative action", code)
		}
	case <-time.After(within):
		t.Fatalf("no DISCONNECT within %v", within)
	}
}

func status(t *testing.T, s *imtest.Server, method, path, token string, body any) int {
	t.Helper()
	code, _ := s.Do(t, method, path, token, body)
	return code
}

// PROTOCOL §6: logout, password change and disable make tokens stop
// working everywhere: REST answers 401, and the live MQTT connections
// made with them close within a second (MQTT 5: DISCONNECT 0x98 first);
// reconnecting with them is refused.
func TestTokenRevocation(t *testing.T) {
	eachEngine(t, func(t *testing.T, s *imtest.Server) {
		t.Run("logout", func(t *testing.T) {
			alice := s.Register(t, "alice")
			other := s.Login(t, alice.Username, "password1") // another device
			c3 := s.Connect(t, alice, imtest.ClientOptions{})
			c5, err := s.Dial5(t, alice, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			cOther := s.Connect(t, other, imtest.ClientOptions{})
			if code := status(t, s, "POST", "/api/v1/auth/logout", alice.Token, nil); code != http.StatusNoContent {
				t.Fatalf("logout: %d", code)
			}
			assertClosed(t, c3, time.Second+500*time.Millisecond)
			assertDisconnected5(t, c5, time.Second+500*time.Millisecond)
			if code := status(t, s, "GET", "/api/v1/me", alice.Token, nil); code != http.StatusUnauthorized {
				t.Fatalf("REST with the logged-out token: %d", code)
			}
			if _, err := s.Dial(t, alice, imtest.ClientOptions{}); err == nil {
				t.Fatal("MQTT connect with the logged-out token accepted")
			}
			if code := status(t, s, "GET", "/api/v1/me", other.Token, nil); code != http.StatusOK {
				t.Fatalf("the other device's token: %d", code)
			}
			if !cOther.Paho.IsConnectionOpen() {
				t.Fatal("the other device was disconnected")
			}
		})
		t.Run("password change", func(t *testing.T) {
			bob := s.Register(t, "bob")
			other := s.Login(t, bob.Username, "password1")
			cOther := s.Connect(t, other, imtest.ClientOptions{})
			cSelf := s.Connect(t, bob, imtest.ClientOptions{})
			for _, tc := range []struct {
				body wire.PasswordChange
				want int
			}{
				{wire.PasswordChange{OldPassword: "wrong-one", NewPassword: "new-password"}, http.StatusUnauthorized},
				{wire.PasswordChange{OldPassword: "password1", NewPassword: "short"}, http.StatusBadRequest},
				{wire.PasswordChange{OldPassword: "password1", NewPassword: "new-password"}, http.StatusNoContent},
			} {
				if code := status(t, s, "PUT", "/api/v1/me/password", bob.Token, tc.body); code != tc.want {
					t.Fatalf("%+v: %d, want %d", tc.body, code, tc.want)
				}
			}
			assertClosed(t, cOther, time.Second+500*time.Millisecond)
			if code := status(t, s, "GET", "/api/v1/me", other.Token, nil); code != http.StatusUnauthorized {
				t.Fatalf("another token after the change: %d", code)
			}
			if code := status(t, s, "GET", "/api/v1/me", bob.Token, nil); code != http.StatusOK || !cSelf.Paho.IsConnectionOpen() {
				t.Fatalf("the token that changed it: %d, connected %v", code, cSelf.Paho.IsConnectionOpen())
			}
			if code, _ := s.Do(t, "POST", "/api/v1/auth/login", "", wire.Credentials{Username: bob.Username, Password: "password1"}); code != http.StatusUnauthorized {
				t.Fatalf("the old password: %d", code)
			}
			s.Login(t, bob.Username, "new-password")
		})
		t.Run("disable and enable", func(t *testing.T) {
			carol := s.Register(t, "carol")
			c5, err := s.Dial5(t, carol, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			path := fmt.Sprintf("/api/v1/users/%d/", carol.UID)
			if code := status(t, s, "POST", path+"disable", carol.Token, nil); code != http.StatusForbidden {
				t.Fatalf("a user disabling itself: %d", code)
			}
			if code := status(t, s, "POST", path+"disable", s.Admin.Token, nil); code != http.StatusNoContent {
				t.Fatalf("disable: %d", code)
			}
			assertDisconnected5(t, c5, time.Second+500*time.Millisecond)
			if code := status(t, s, "GET", "/api/v1/me", carol.Token, nil); code != http.StatusUnauthorized {
				t.Fatalf("a disabled user's token: %d", code)
			}
			if code, _ := s.Do(t, "POST", "/api/v1/auth/login", "", wire.Credentials{Username: carol.Username, Password: "password1"}); code != http.StatusUnauthorized {
				t.Fatalf("a disabled user's login: %d", code)
			}
			if code := status(t, s, "POST", path+"enable", s.Admin.Token, nil); code != http.StatusNoContent {
				t.Fatalf("enable: %d", code)
			}
			if code := status(t, s, "GET", "/api/v1/me", carol.Token, nil); code != http.StatusUnauthorized {
				t.Fatalf("a token revoked by the disable works again after enable: %d", code)
			}
			s.Login(t, carol.Username, "password1")
			if code := status(t, s, "POST", fmt.Sprintf("/api/v1/users/%d/disable", s.Admin.UID), s.Admin.Token, nil); code != http.StatusBadRequest {
				t.Fatalf("the admin disabling itself: %d", code)
			}
			if code := status(t, s, "POST", "/api/v1/users/999999/disable", s.Admin.Token, nil); code != http.StatusNotFound {
				t.Fatalf("disabling nobody: %d", code)
			}
		})
	})
}

// PROTOCOL §6: tokens are bound to the installation and the account; the
// role is the account's.
func TestTokensBoundToAccount(t *testing.T) {
	s := imtest.Start(t, imtest.Options{})
	alice := s.Register(t, "alice")
	secret := []byte(strings.Repeat("s", 32)) // imtest's
	forge := func(claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(alice.Token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	exp := time.Now().Add(time.Hour).Unix()
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"a uid that does not exist", forge(jwt.MapClaims{"iss": "imserver", "sub": "999999", "jti": claims["jti"], "ins": claims["ins"], "exp": exp})},
		{"another user's uid on alice's token id", forge(jwt.MapClaims{"iss": "imserver", "sub": fmt.Sprint(s.Admin.UID), "jti": claims["jti"], "ins": claims["ins"], "exp": exp})},
		{"a token id never issued", forge(jwt.MapClaims{"iss": "imserver", "sub": fmt.Sprint(alice.UID), "jti": "00000000000000000000000000000000", "ins": claims["ins"], "exp": exp})},
		{"another installation", forge(jwt.MapClaims{"iss": "imserver", "sub": fmt.Sprint(alice.UID), "jti": claims["jti"], "ins": "another-database", "exp": exp})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := status(t, s, "GET", "/api/v1/me", tc.token, nil); code != http.StatusUnauthorized {
				t.Fatalf("REST: %d", code)
			}
			if code := status(t, s, "POST", "/api/v1/conversations/"+single(alice.UID, s.Admin.UID)+"/messages", tc.token, text("", "x")); code != http.StatusUnauthorized {
				t.Fatalf("a message: %d", code)
			}
			if _, err := s.Dial(t, alice, imtest.ClientOptions{Password: &tc.token}); err == nil {
				t.Fatal("MQTT accepted")
			}
		})
	}

	// The role comes from the account, not from the token: promoted in the
	// database, the same token is an admin's (within the few seconds a
	// checked token is trusted).
	db, err := sqlx.Open("sqlite", strings.TrimPrefix(s.DBURL, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE users SET role = 'admin' WHERE uid = ?`, alice.UID); err != nil {
		t.Fatal(err)
	}
	imtest.WaitFor(t, 10*time.Second, func() error {
		var me wire.Account
		s.MustDo(t, "GET", "/api/v1/me", alice.Token, nil, http.StatusOK, &me)
		if code := status(t, s, "POST", "/api/v1/broadcasts", alice.Token, map[string]any{"text": "now I can"}); code != http.StatusCreated {
			return fmt.Errorf("broadcast as the promoted user: %d", code)
		}
		return nil
	})

	// A database replaced under the same key: the old tokens are refused.
	s.Close()
	fresh := imtest.Start(t, imtest.Options{})
	fresh.Register(t, "alice") // uid 2 again, in the new database
	if code := status(t, fresh, "GET", "/api/v1/me", alice.Token, nil); code != http.StatusUnauthorized {
		t.Fatalf("a token of the old database: %d", code)
	}
	if _, err := fresh.Dial(t, alice, imtest.ClientOptions{}); err == nil {
		t.Fatal("MQTT accepted a token of the old database")
	}
}

// A token checked by another server sharing the database stops working
// there too: revocations are heard within a few seconds (two servers on
// one PostgreSQL).
func TestRevocationReachesAnotherServer(t *testing.T) {
	a := imtest.Start(t, imtest.Options{Engine: imtest.Postgres})
	b := imtest.Start(t, imtest.Options{Engine: imtest.Postgres, DBURL: a.DBURL})
	alice := a.Register(t, "alice")
	c := b.Connect(t, alice, imtest.ClientOptions{})
	if code := status(t, b, "GET", "/api/v1/me", alice.Token, nil); code != http.StatusOK {
		t.Fatalf("the other server: %d", code)
	}
	if code := status(t, a, "POST", "/api/v1/auth/logout", alice.Token, nil); code != http.StatusNoContent {
		t.Fatalf("logout: %d", code)
	}
	assertClosed(t, c, 15*time.Second)
	imtest.WaitFor(t, 15*time.Second, func() error {
		if code := status(t, b, "GET", "/api/v1/me", alice.Token, nil); code != http.StatusUnauthorized {
			return fmt.Errorf("the other server still takes the token: %d", code)
		}
		return nil
	})
}
