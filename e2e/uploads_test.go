package e2e

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/imserver/imserver/internal/imtest"
	"github.com/imserver/imserver/wire"
)

// upload posts content as the multipart field "file" named name, and
// returns the status and body.
func upload(t *testing.T, s *imtest.Server, token, field, name string, content []byte) (int, []byte) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile(field, name)
	if err != nil {
		t.Fatal(err)
	}
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/uploads", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func pngOf(w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// A 1×1 lossless WebP.
var webp1x1 = []byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00")

// PROTOCOL §7: uploads are sniffed, unguessable, served inline only for
// raster images, always nosniff, and bounded in size.
func TestUploads(t *testing.T) {
	for _, e := range imtest.Engines {
		t.Run(string(e), func(t *testing.T) {
			t.Parallel()
			testUploads(t, imtest.Start(t, imtest.Options{Engine: e, UploadMax: 64 << 10}))
		})
	}
}

func testUploads(t *testing.T, s *imtest.Server) {
	alice, bob := s.Register(t, "alice"), s.Register(t, "bob")

	for _, tc := range []struct {
		desc, name  string
		content     []byte
		contentType string
		inline      bool
		w, h        int
	}{
		{"a PNG", "cat.png", pngOf(3, 2), "image/png", true, 3, 2},
		{"a WebP", "dot.webp", webp1x1, "image/webp", true, 1, 1},
		{"HTML posing as an image", "cat.png", []byte("<html><script>alert(1)</script></html>"), "text/html", false, 0, 0},
		{"SVG", "logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>`), "image/svg+xml", false, 0, 0},
		{"a path in the name", "../../etc/passwd", []byte("root:x:0:0"), "text/plain", false, 0, 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			status, b := upload(t, s, alice.Token, "file", tc.name, tc.content)
			if status != http.StatusCreated {
				t.Fatalf("status %d: %s", status, b)
			}
			var u wire.Upload
			if err := json.Unmarshal(b, &u); err != nil {
				t.Fatal(err)
			}
			if u.ContentType != tc.contentType || u.Size != int64(len(tc.content)) || u.Width != tc.w || u.Height != tc.h {
				t.Fatalf("upload: %+v", u)
			}
			if strings.ContainsAny(u.Name, `/\`) || u.Name == "" {
				t.Fatalf("name %q", u.Name)
			}
			if !strings.HasPrefix(u.URL, s.URL+"/uploads/") || len(strings.Split(strings.TrimPrefix(u.URL, s.URL+"/uploads/"), "/")[0]) < 32 {
				t.Fatalf("url %q is not absolute with 128 random bits", u.URL)
			}
			resp, err := http.Get(u.URL) // no token: the URL is the capability
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			h := resp.Header
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, tc.content) || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("GET: %d, %d bytes, %v", resp.StatusCode, len(got), h)
			}
			disp := h.Get("Content-Disposition")
			if tc.inline != strings.HasPrefix(disp, "inline") || (tc.inline && h.Get("Content-Type") != tc.contentType) ||
				(!tc.inline && (!strings.HasPrefix(disp, "attachment") || h.Get("Content-Type") != "application/octet-stream")) {
				t.Fatalf("served as %q, %q", h.Get("Content-Type"), disp)
			}
			// An image message may carry the URL.
			kind := "file"
			body := map[string]any{"url": u.URL, "name": u.Name, "size": u.Size}
			if tc.inline {
				kind, body = "image", map[string]any{"url": u.URL, "width": u.Width, "height": u.Height}
			}
			s.MustDo(t, "POST", "/api/v1/conversations/"+single(alice.UID, bob.UID)+"/messages", alice.Token,
				map[string]any{"type": kind, "body": body}, http.StatusCreated, nil)
		})
	}

	for _, tc := range []struct {
		desc, field string
		content     []byte
		token       string
		status      int
		code        string
	}{
		{"empty", "file", nil, alice.Token, http.StatusBadRequest, "invalid_request"},
		{"over the limit", "file", bytes.Repeat([]byte("x"), 64<<10+1), alice.Token, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"far over the limit", "file", bytes.Repeat([]byte("x"), 1<<20), alice.Token, http.StatusRequestEntityTooLarge, "payload_too_large"},
		{"another field", "photo", []byte("x"), alice.Token, http.StatusBadRequest, "invalid_request"},
		{"anonymous", "file", []byte("x"), "", http.StatusUnauthorized, "unauthorized"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			status, b := upload(t, s, tc.token, tc.field, "x.bin", tc.content)
			if status != tc.status || imtest.ErrorCode(b) != tc.code {
				t.Fatalf("status %d %s, want %d %s", status, b, tc.status, tc.code)
			}
		})
	}
	if status, b := s.Do(t, "POST", "/api/v1/uploads", alice.Token, `{"file":"x"}`); status != http.StatusBadRequest {
		t.Fatalf("JSON instead of multipart: %d %s", status, b)
	}
	for _, path := range []string{"/uploads/0123456789abcdef0123456789abcdef/x", "/uploads/../../etc/passwd/x", "/uploads/ABCDEF/x"} {
		if status, _ := s.Do(t, "GET", path, "", nil); status != http.StatusNotFound {
			t.Fatalf("GET %s: %d", path, status)
		}
	}
}
