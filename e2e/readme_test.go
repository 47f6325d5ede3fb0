package e2e

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestReadme runs scripts/readme-check.sh: the shell examples of README.md,
// docs/rooms.md and docs/customer-service.md, pasted in order against a
// fresh server (this test's build of it), every example output checked.
// Without curl, jq and the mosquitto clients it is skipped, except in CI
// (CI set), where it fails.
func TestReadme(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the documentation's examples against the real binary")
	}
	for _, tool := range []string{"bash", "curl", "jq", "mosquitto_sub", "mosquitto_pub", "stdbuf", "awk"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := tool + " not found (Debian: apt-get install curl jq mosquitto-clients)"
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip("SKIPPING: " + msg)
		}
	}
	bin := imserverBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "scripts/readme-check.sh")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "IMSERVER_BIN="+bin)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/readme-check.sh: %v\n%s", err, out)
	}
	t.Logf("%s", lastLines(out, 3))
}

func lastLines(b []byte, n int) []byte {
	for i := len(b) - 2; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
