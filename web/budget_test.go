package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// firstLoadBudget is the most the chat app may send, gzipped, before it
// can show anything: the page, its stylesheet and icon, and every module
// it imports.
const firstLoadBudget = 300 << 10

// Budgets of the other pages, the same way. The widget loads on shops'
// own pages: it gets less room.
const (
	deskBudget   = 300 << 10
	adminBudget  = 300 << 10
	widgetBudget = 200 << 10
	// embedBudget is /widget.js, which every page of a shop loads.
	embedBudget = 3 << 10
)

var (
	htmlRef   = regexp.MustCompile(`(?:src|href)="([^"]+)"`)
	importRef = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?from\s*"([^"]+)"|^\s*import\s*"([^"]+)"`)
	cssRef    = regexp.MustCompile(`url\(\s*["']?([^"')]+)["']?\s*\)`)
)

// TestFirstLoadSize follows what each page loads (the HTML's scripts,
// styles and icons, each module's static imports, the stylesheets'
// url()s) through the handler, sums the gzipped sizes, and fails over the
// page's budget. Vendored files are single-file bundles: they import
// nothing.
func TestFirstLoadSize(t *testing.T) {
	for _, tc := range []struct {
		page   string
		budget int
		must   []string
	}{
		{"/", firstLoadBudget, []string{"/app/main.js", "/sdk/imclient.js", "/vendor/mqtt@5.16.0/mqtt.esm.js", "/app/style.css"}},
		{"/desk", deskBudget, []string{"/app/desk.js", "/app/desk-store.js", "/sdk/imclient.js", "/app/desk.css"}},
		{"/admin", adminBudget, []string{"/app/admin.js", "/app/admin-shops.js", "/app/admin.css"}},
		{"/widget", widgetBudget, []string{"/app/widget-main.js", "/app/widget-store.js", "/sdk/imclient.js", "/app/widget.css"}},
	} {
		name := strings.TrimPrefix(tc.page, "/")
		if name == "" {
			name = "chat"
		}
		t.Run(name, func(t *testing.T) { checkFirstLoad(t, tc.page, tc.budget, tc.must) })
	}
}

// TestEmbedScriptSize: /widget.js is tiny and a plain script (no imports).
func TestEmbedScriptSize(t *testing.T) {
	h := Handler(Options{})
	r, _ := http.NewRequest("GET", "/widget.js", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d", w.Code)
	}
	t.Logf("/widget.js: %d bytes gzipped (budget %d)", w.Body.Len(), embedBudget)
	if w.Body.Len() > embedBudget {
		t.Errorf("/widget.js is %d bytes gzipped, over the budget of %d", w.Body.Len(), embedBudget)
	}
	plain := get(t, h, "GET", "/widget.js", nil).Body.String()
	if importRef.MatchString(plain) || strings.Contains(plain, "innerHTML") {
		t.Error("/widget.js imports modules or uses innerHTML")
	}
}

func checkFirstLoad(t *testing.T, page string, budget int, must []string) {
	h := Handler(Options{})
	seen := map[string]int{}
	var visit func(path string)
	visit = func(path string) {
		if _, ok := seen[path]; ok {
			return
		}
		r, _ := http.NewRequest("GET", path, nil)
		r.Header.Set("Accept-Encoding", "gzip")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("%s (loaded by the page): status %d", path, w.Code)
			seen[path] = 0
			return
		}
		seen[path] = w.Body.Len()
		plain, _ := http.NewRequest("GET", path, nil)
		pw := httptest.NewRecorder()
		h.ServeHTTP(pw, plain)
		src := pw.Body.String()
		var refs []string
		switch {
		case path == page:
			for _, m := range htmlRef.FindAllStringSubmatch(src, -1) {
				refs = append(refs, m[1])
			}
		case strings.HasSuffix(path, ".js") && !strings.HasPrefix(path, "/vendor/"):
			for _, m := range importRef.FindAllStringSubmatch(src, -1) {
				refs = append(refs, m[1]+m[2])
			}
		case strings.HasSuffix(path, ".css"):
			for _, m := range cssRef.FindAllStringSubmatch(src, -1) {
				refs = append(refs, m[1])
			}
		}
		base, _ := url.Parse("http://x" + path)
		for _, ref := range refs {
			u, err := base.Parse(ref)
			if err != nil || u.Host != "x" {
				t.Errorf("%s refers to %q, not a path on this server", path, ref)
				continue
			}
			visit(u.Path)
		}
	}
	visit(page)
	var total int
	var paths []string
	for p, n := range seen {
		total += n
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		t.Logf("%7d  %s", seen[p], p)
	}
	t.Logf("%7d  total, gzipped (budget %d)", total, budget)
	for _, want := range must {
		if _, ok := seen[want]; !ok {
			t.Errorf("the module graph walk missed %s", want)
		}
	}
	if total > budget {
		t.Errorf("the first load of %s is %d bytes gzipped, over the budget of %d", page, total, budget)
	}
}
