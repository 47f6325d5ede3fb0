package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestPagesAndHeaders(t *testing.T) {
	h := Handler(Options{})
	for _, tc := range []struct {
		name, path, ctype, cache string
		cors                     bool
	}{
		{"index", "/", "text/html; charset=utf-8", "no-cache", false},
		{"desk", "/desk", "text/html; charset=utf-8", "no-cache", false},
		{"admin", "/admin", "text/html; charset=utf-8", "no-cache", false},
		{"widget page", "/widget", "text/html; charset=utf-8", "no-cache", false},
		{"widget script", "/widget.js", "text/javascript; charset=utf-8", "no-cache", false},
		{"app module", "/app/main.js", "text/javascript; charset=utf-8", "no-cache", false},
		{"stylesheet", "/app/style.css", "text/css; charset=utf-8", "no-cache", false},
		{"sdk", "/sdk/imclient.js", "text/javascript; charset=utf-8", "no-cache", true},
		{"vendored", "/vendor/mqtt@5.16.0/mqtt.esm.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", true},
		{"vendored preact", "/vendor/htm@3.1.1/preact-standalone.module.js", "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(t, h, "GET", tc.path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			hd := w.Header()
			for k, want := range map[string]string{
				"Content-Type":            tc.ctype,
				"Cache-Control":           tc.cache,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"Content-Security-Policy": cspOf(tc.path),
			} {
				if got := hd.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if got := hd.Get("Access-Control-Allow-Origin") == "*"; got != tc.cors {
				t.Errorf("Access-Control-Allow-Origin * = %v, want %v", got, tc.cors)
			}
			if hd.Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

func cspOf(path string) string {
	if path == "/widget" {
		return WidgetCSP
	}
	return CSP
}

func TestCSPAllowsOnlyOwnOrigin(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "connect-src 'self';", "frame-ancestors 'self'", "object-src 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP lacks %q: %s", want, CSP)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:"} {
		if strings.Contains(CSP, bad) {
			t.Errorf("CSP allows %q: %s", bad, CSP)
		}
	}
}

// TestWidgetCSP: only the widget's page may be framed by other origins,
// and otherwise it is as strict as every other page.
func TestWidgetCSP(t *testing.T) {
	if want := strings.Replace(CSP, "frame-ancestors 'self'", "frame-ancestors *", 1); WidgetCSP != want {
		t.Errorf("WidgetCSP = %q, want CSP with frame-ancestors * (%q)", WidgetCSP, want)
	}
	h := Handler(Options{})
	for _, p := range []string{"/", "/desk", "/admin", "/widget.js", "/app/widget-main.js", "/widget/", "/widgetx"} {
		if got := get(t, h, "GET", p, nil).Header().Get("Content-Security-Policy"); got != CSP {
			t.Errorf("GET %s: CSP %q, want the strict one", p, got)
		}
	}
	w := get(t, h, "GET", "/widget?shop=1", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Security-Policy") != WidgetCSP {
		t.Errorf("GET /widget?shop=1: %d, CSP %q", w.Code, w.Header().Get("Content-Security-Policy"))
	}
	if w.Header().Get("X-Frame-Options") != "" {
		t.Error("the widget page sets X-Frame-Options")
	}
}

func TestConditionalGet(t *testing.T) {
	h := Handler(Options{})
	for _, p := range []string{"/", "/app/main.js", "/vendor/mqtt@5.16.0/mqtt.esm.js"} {
		w := get(t, h, "GET", p, nil)
		etag := w.Header().Get("ETag")
		w2 := get(t, h, "GET", p, map[string]string{"If-None-Match": etag})
		if w2.Code != http.StatusNotModified || w2.Body.Len() != 0 {
			t.Errorf("%s with If-None-Match %s: status %d, %d bytes; want 304, empty", p, etag, w2.Code, w2.Body.Len())
		}
		w3 := get(t, h, "GET", p, map[string]string{"If-None-Match": `"other"`})
		if w3.Code != http.StatusOK {
			t.Errorf("%s with another ETag: status %d", p, w3.Code)
		}
	}
}

func TestGzip(t *testing.T) {
	h := Handler(Options{})
	plain := get(t, h, "GET", "/sdk/imclient.js", nil)
	if plain.Header().Get("Content-Encoding") != "" {
		t.Fatalf("compressed without Accept-Encoding")
	}
	if !strings.Contains(plain.Header().Get("Vary"), "Accept-Encoding") {
		t.Errorf("Vary = %q", plain.Header().Get("Vary"))
	}
	for _, ae := range []string{"gzip", "gzip, deflate, br, zstd", "br;q=1.0, gzip;q=0.8"} {
		w := get(t, h, "GET", "/sdk/imclient.js", map[string]string{"Accept-Encoding": ae})
		if w.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("Accept-Encoding %q: not gzipped", ae)
		}
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(out, plain.Body.Bytes()) {
			t.Fatalf("gzipped body differs from the plain one (err %v)", err)
		}
	}
	if w := get(t, h, "GET", "/sdk/imclient.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); w.Header().Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 still gzipped")
	}
	if w := get(t, h, "HEAD", "/sdk/imclient.js", map[string]string{"Accept-Encoding": "gzip"}); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: status %d, %d bytes", w.Code, w.Body.Len())
	}
}

func TestNotFoundAndMethods(t *testing.T) {
	h := Handler(Options{})
	for _, p := range []string{"/index.html", "/desk.html", "/admin.html", "/widget.html", "/desk/", "/vendor/VENDOR.md", "/app/", "/nope", "/sdk/"} {
		w := get(t, h, "GET", p, nil)
		if w.Code != http.StatusNotFound || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
			t.Errorf("GET %s: status %d, %s; want a plain 404", p, w.Code, w.Header().Get("Content-Type"))
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", p)
		}
	}
	if w := get(t, h, "POST", "/", nil); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: status %d", w.Code)
	}
}
