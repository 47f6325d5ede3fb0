package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// TestReadmeMQTTJS runs the README's mqtt.js example with Node against a
// server where alice and bob are registered as in the walkthrough: it must
// end by itself once the echo of its message arrives, and bob must have
// the message.
func TestReadmeMQTTJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		need(t, "node not found (Debian: apt-get install nodejs npm)")
	}
	dir, err := mqttjs()
	if err != nil {
		need(t, "mqtt.js: %v", err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```js\n")
	js, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```js block")
	}
	srv := imtest.Start(t, imtest.Options{})
	for _, u := range []wire.Credentials{{Username: "alice", Password: "secret1"}, {Username: "bob", Password: "secret2"}} {
		srv.MustDo(t, "POST", "/api/v1/auth/register", "", u, http.StatusCreated, nil)
	}
	bob := srv.Login(t, "bob", "secret2")
	js = strings.ReplaceAll(js, "http://localhost:8080", srv.URL)
	js = strings.ReplaceAll(js, "ws://localhost:8080", strings.TrimSuffix(srv.WSURL, "/mqtt"))
	f, err := os.CreateTemp(dir, "readme-*.mjs") // next to node_modules, where `import "mqtt"` resolves
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(f.Name()) })
	if _, err := f.WriteString(js); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, f.Name()).CombinedOutput()
	if err != nil {
		t.Fatalf("node README example: %v (it must end by itself)\n%s", err, out)
	}
	if !strings.Contains(string(out), "hi from the web") {
		t.Errorf("the example printed no echo of its message:\n%s", out)
	}
	var convs []struct {
		Conv        string        `json:"conv"`
		LastMessage wire.Envelope `json:"last_message"`
	}
	srv.MustDo(t, "GET", "/api/v1/conversations", bob.Token, nil, http.StatusOK, &convs)
	for _, c := range convs {
		if c.LastMessage.CID == "w-1" {
			return
		}
	}
	t.Errorf("bob has no message w-1: %s", fmt.Sprint(convs))
}
