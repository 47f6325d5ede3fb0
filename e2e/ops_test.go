package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/imserver/imserver/app"
	"github.com/imserver/imserver/internal/pgtest"
)

// A PostgreSQL URL without sslmode, against a server without TLS (the
// usual local install), fails with lib/pq's "SSL is not enabled on the
// server"; the error says what to add.
func TestPostgresWithoutSSLModeSaysWhatToAdd(t *testing.T) {
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("sslmode")
	u.RawQuery = q.Encode()
	_, err = app.New(context.Background(), app.Config{DatabaseURL: u.String(), HTTPAddr: "127.0.0.1:0", JWTSecret: strings.Repeat("s", 32)})
	if err == nil {
		t.Skip("this PostgreSQL speaks TLS")
	}
	if !strings.Contains(err.Error(), "?sslmode=disable") {
		t.Fatalf("the error does not say what to add: %v", err)
	}
	t.Logf("error: %v", err)
}
