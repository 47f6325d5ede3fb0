package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/imserver/imserver/im"
	"github.com/imserver/imserver/wire"
)

// Every error has its status: domain errors theirs, a request whose time
// ran out 503 (try again), anything else 500.
func TestStatusOf(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", im.ErrNotFound), http.StatusNotFound, wire.HTTPNotFound},
		{fmt.Errorf("x: %w", im.ErrRateLimited), http.StatusTooManyRequests, wire.HTTPRateLimited},
		{fmt.Errorf("x: %w", im.ErrUnavailable), http.StatusServiceUnavailable, wire.HTTPUnavailable},
		{fmt.Errorf("set status: %w", context.DeadlineExceeded), http.StatusServiceUnavailable, wire.HTTPUnavailable},
		{errors.New("disk on fire"), http.StatusInternalServerError, wire.HTTPInternal},
	} {
		if status, code := statusOf(tc.err); status != tc.status || code != tc.code {
			t.Errorf("%v: %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
