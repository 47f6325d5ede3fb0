// Package web serves the browser client of UI.md from files embedded in the
// binary: the chat app at /, the agent desk at /desk, administration at
// /admin, the customer chat at /widget and its embed script at /widget.js,
// their ES modules under /app/, the JavaScript SDK at /sdk/imclient.js and
// pinned third-party libraries under /vendor/{name}@{version}/. There is no
// build step: the files on disk are what the browser runs.
//
// Every response carries a Content-Security-Policy that allows only the
// server's own origin (the /widget page alone may be framed by other
// origins: shops embed it), X-Content-Type-Options: nosniff and
// Referrer-Policy: no-referrer. Vendored files are immutable (their path
// names their version); pages and app files are revalidated with an ETag.
// Text files are gzipped once, on first request, and served compressed to
// clients that accept it.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

// files holds the client. static/ is served from the root (its pages at
// the paths of pages, not under their file names), vendor/ under /vendor/.
//
//go:embed static vendor
var files embed.FS

// Options configures Handler. The zero value is usable.
type Options struct {
	// Log receives the handler's diagnostics. Default: slog.Default().
	Log *slog.Logger
}

// CSP is the Content-Security-Policy of every response: scripts, styles,
// fonts and connections (fetch, and WebSocket to /mqtt, which browsers
// match to 'self' on the same host and port) only from the server's own
// origin, images also from blob: and data: URLs (previews of a file being
// sent), no inline script, no eval, no framing by other origins. Workers
// may also come from blob: URLs: MQTT.js runs its keepalive timers in one
// it makes that way, because browsers slow down timers of hidden tabs, and
// a late PINGREQ would make the server drop the connection.
const CSP = cspBase + "frame-ancestors 'self'"

// WidgetCSP is the policy of the /widget page: CSP, except that any page
// may frame it (the embed script of a shop's site puts it in an iframe).
// Everything else about it stays as strict: the page itself only talks to
// this server.
const WidgetCSP = cspBase + "frame-ancestors *"

const cspBase = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"font-src 'self'; connect-src 'self'; media-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; " +
	"form-action 'self'; "

// pages maps the pages' paths to their files under static/. The files are
// not served under their own names.
var pages = map[string]string{
	"/":       "index.html",
	"/desk":   "desk.html",
	"/admin":  "admin.html",
	"/widget": "widget.html",
}

// widgetPath is the page that other origins may frame.
const widgetPath = "/widget"

// Cache-Control values.
const (
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheRevalidate  = "no-cache"
	minGzipSize      = 512 // smaller files are not worth compressing
	sdkPath          = "/sdk/imclient.js"
	vendorPathPrefix = "/vendor/"
)

// asset is one servable file.
type asset struct {
	name        string // URL path
	contentType string
	data        []byte
	etag        string // quoted strong ETag, from the content's SHA-256
	immutable   bool   // a versioned path: cache forever
	cors        bool   // importable by pages of other origins

	gzOnce sync.Once
	gz     []byte // nil: not worth compressing
}

// gzipped returns the compressed content, or nil if the file is not
// compressible text or compression does not help.
func (a *asset) gzipped() []byte {
	a.gzOnce.Do(func() {
		if len(a.data) < minGzipSize || !compressible(a.contentType) {
			return
		}
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(a.data)
		_ = zw.Close()
		if b.Len() < len(a.data) {
			a.gz = b.Bytes()
		}
	})
	return a.gz
}

func compressible(ct string) bool {
	for _, p := range []string{"text/", "application/javascript", "application/json", "image/svg+xml"} {
		if strings.HasPrefix(ct, p) {
			return true
		}
	}
	return false
}

// handler serves the assets.
type handler struct {
	log    *slog.Logger
	assets map[string]*asset
}

// Handler returns the web client's handler. It answers GET and HEAD for
// the files it has and a plain 404 for anything else, so mount it as the
// fallback of the server's router.
func Handler(o Options) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	h := &handler{log: o.Log, assets: make(map[string]*asset)}
	if err := h.load(); err != nil {
		// The files are compiled in: this cannot fail in a built binary.
		panic(fmt.Sprintf("web: load embedded files: %v", err))
	}
	return h
}

// load builds the asset table from the embedded files.
func (h *handler) load() error {
	add := func(root, prefix string, immutable bool) error {
		return fs.WalkDir(files, root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(p, ".md") {
				return nil // VENDOR.md and notes are for people reading the repository
			}
			data, err := files.ReadFile(p)
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
			name := prefix + strings.TrimPrefix(p, root+"/")
			sum := sha256.Sum256(data)
			a := &asset{
				name:        name,
				contentType: contentType(p),
				data:        data,
				etag:        `"` + hex.EncodeToString(sum[:16]) + `"`,
				immutable:   immutable,
				cors:        immutable || name == sdkPath,
			}
			h.assets[name] = a
			return nil
		})
	}
	if err := add("static", "/", false); err != nil {
		return err
	}
	if err := add("vendor", vendorPathPrefix, true); err != nil {
		return err
	}
	for route, file := range pages {
		a, ok := h.assets["/"+file]
		if !ok {
			return fmt.Errorf("static/%s is missing", file)
		}
		delete(h.assets, "/"+file)
		a.name = route
		h.assets[route] = a
	}
	return nil
}

func contentType(p string) string {
	switch path.Ext(p) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".html":
		return "text/html; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".webmanifest":
		return "application/manifest+json"
	case ".md", ".txt", "":
		return "text/plain; charset=utf-8"
	}
	if ct := mime.TypeByExtension(path.Ext(p)); ct != "" {
		return ct
	}
	return "application/octet-stream"
}

// securityHeaders are set on every answer, 404s included.
func securityHeaders(w http.ResponseWriter, path string) {
	hd := w.Header()
	if path == widgetPath {
		hd.Set("Content-Security-Policy", WidgetCSP)
	} else {
		hd.Set("Content-Security-Policy", CSP)
	}
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w, r.URL.Path)
	a, ok := h.assets[r.URL.Path]
	if !ok {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404 page not found\n"))
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte("405 method not allowed\n"))
		return
	}
	hd := w.Header()
	hd.Set("ETag", a.etag)
	if a.immutable {
		hd.Set("Cache-Control", cacheImmutable)
	} else {
		hd.Set("Cache-Control", cacheRevalidate)
	}
	if a.cors {
		hd.Set("Access-Control-Allow-Origin", "*")
	}
	gz := a.gzipped()
	if gz != nil {
		hd.Add("Vary", "Accept-Encoding")
	}
	if etagMatch(r.Header.Get("If-None-Match"), a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := a.data
	if gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = gz
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Type", a.contentType)
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(body); err != nil {
		h.log.Debug("web: write answer", "path", a.name, "error", err)
	}
}

// etagMatch reports whether an If-None-Match header names etag (weak
// comparison, as RFC 9110 asks for If-None-Match).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			return false
		}
		return true
	}
	return false
}
