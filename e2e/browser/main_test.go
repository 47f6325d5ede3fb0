package browser

import (
	"testing"

	"github.com/imserver/imserver/internal/pgtest"
)

// TestMain stops the throwaway PostgreSQL cluster the restart tests start
// (without it, every run left one running).
func TestMain(m *testing.M) { pgtest.Main(m) }
