package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWebFallback: paths outside /api/, /mqtt and /healthz go to the web
// handler; the API's own paths keep their JSON answers.
func TestWebFallback(t *testing.T) {
	web := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte("web " + r.URL.Path))
	})
	h := New(Options{Web: web})
	for _, tc := range []struct {
		method, path string
		status       int
		json         bool
	}{
		{"GET", "/", http.StatusTeapot, false},
		{"GET", "/sdk/imclient.js", http.StatusTeapot, false},
		{"GET", "/desk", http.StatusTeapot, false},
		{"GET", "/api/v1/nope", http.StatusNotFound, true},
		{"GET", "/api/nope", http.StatusNotFound, true},
		{"GET", "/api", http.StatusNotFound, true},
		{"POST", "/mqtt", http.StatusNotFound, true},
		{"POST", "/healthz", http.StatusNotFound, true},
		{"GET", "/healthz", http.StatusOK, true},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, nil))
		isJSON := strings.HasPrefix(w.Header().Get("Content-Type"), "application/json")
		if w.Code != tc.status || isJSON != tc.json {
			t.Errorf("%s %s: status %d, JSON %v (%s); want %d, JSON %v", tc.method, tc.path, w.Code, isJSON, w.Body, tc.status, tc.json)
		}
	}
	// Without a web handler everything unknown is the API's JSON 404.
	w := httptest.NewRecorder()
	New(Options{}).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != http.StatusNotFound || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Errorf("GET / without Web: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
}
