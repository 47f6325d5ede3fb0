// Package uploads keeps the files users upload (POST /uploads, PROTOCOL.md
// §7): their bytes in a directory, each under a random id that is also the
// capability in its URL, and what is known of them in the database. The
// content type is sniffed from the bytes, never taken from the client;
// only raster images (PNG, JPEG, GIF, WebP) are ever served inline.
package uploads

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // registers GIF for DecodeConfig
	_ "image/jpeg" // registers JPEG
	_ "image/png"  // registers PNG
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	_ "golang.org/x/image/webp" // registers WebP

	"github.com/imserver/imserver/im"
)

// DefaultMax is the default size limit of one upload (--upload-max).
const DefaultMax = 10 << 20

// Store keeps uploads under a directory.
type Store struct {
	dir  string
	max  int64
	meta im.UploadStore
	now  func() time.Time
}

// New returns a Store keeping files in dir (created, private to the
// server's user, if missing) and refusing files over max bytes.
func New(dir string, max int64, meta im.UploadStore) (*Store, error) {
	if max <= 0 {
		return nil, fmt.Errorf("upload limit must be positive, not %d", max)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("upload directory: %w", err)
	}
	return &Store{dir: dir, max: max, meta: meta, now: time.Now}, nil
}

// Max returns the size limit of one upload, in bytes.
func (s *Store) Max() int64 { return s.max }

// Dir returns the directory the files are kept in.
func (s *Store) Dir() string { return s.dir }

// inline lists the content types served inline: raster images. SVG (which
// runs scripts), HTML and everything else are served as attachments.
var inline = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// Inline reports whether files of contentType are served inline.
func Inline(contentType string) bool { return inline[contentType] }

// Save stores what r holds as a file of owner named name, and returns its
// record. Empty files are refused (ErrInvalid), and files over the limit
// (ErrTooLarge) without keeping anything.
func (s *Store) Save(ctx context.Context, owner int64, name string, r io.Reader) (im.Upload, error) {
	id, err := newID()
	if err != nil {
		return im.Upload{}, err
	}
	tmp, err := os.CreateTemp(s.dir, ".upload-*")
	if err != nil {
		return im.Upload{}, fmt.Errorf("upload: %w", err)
	}
	kept := false
	defer func() {
		if !kept {
			_ = os.Remove(tmp.Name())
		}
	}()
	// The first 512 bytes are kept for sniffing as they are written.
	head := &headBuffer{max: 512}
	n, err := io.Copy(tmp, io.TeeReader(io.LimitReader(r, s.max+1), head))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || n > s.max:
		return im.Upload{}, &im.Error{Kind: im.ErrTooLarge, Msg: fmt.Sprintf("the file is over the limit of %d bytes", s.max)}
	case err != nil:
		return im.Upload{}, &im.Error{Kind: im.ErrInvalid, Msg: "the upload was cut short"}
	case n == 0:
		return im.Upload{}, &im.Error{Kind: im.ErrInvalid, Msg: "the file is empty"}
	}
	u := im.Upload{ID: id, Owner: owner, Name: SafeName(name), Size: n, ContentType: sniff(head.Bytes()), CreatedAt: s.now().UnixMilli()}
	if Inline(u.ContentType) {
		u.Width, u.Height = dimensions(tmp.Name())
	}
	if err := os.Rename(tmp.Name(), s.path(id)); err != nil {
		return im.Upload{}, fmt.Errorf("upload: %w", err)
	}
	kept = true
	if err := s.meta.CreateUpload(ctx, u); err != nil {
		_ = os.Remove(s.path(id))
		return im.Upload{}, err
	}
	return u, nil
}

// Open returns an upload's record and its bytes; ErrNotFound if there is
// no such upload. The caller closes the file.
func (s *Store) Open(ctx context.Context, id string) (im.Upload, *os.File, error) {
	if !validID(id) {
		return im.Upload{}, nil, &im.Error{Kind: im.ErrNotFound, Msg: "no such upload"}
	}
	u, err := s.meta.Upload(ctx, id)
	if errors.Is(err, im.ErrNotFound) {
		return im.Upload{}, nil, &im.Error{Kind: im.ErrNotFound, Msg: "no such upload"}
	}
	if err != nil {
		return im.Upload{}, nil, err
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		return im.Upload{}, nil, fmt.Errorf("upload %s: %w", id, err)
	}
	return u, f, nil
}

// path is where an upload's bytes are: ids are hex, so they never escape
// the directory.
func (s *Store) path(id string) string { return filepath.Join(s.dir, id) }

// idBytes is the size of an id: 128 random bits.
const idBytes = 16

func newID() (string, error) {
	var b [idBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("upload id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func validID(id string) bool {
	if len(id) != 2*idBytes {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// sniff returns the content type of a file from its first bytes, without
// parameters; "application/octet-stream" when unknown.
func sniff(head []byte) string {
	ct := http.DetectContentType(head)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	// The standard sniffer has no SVG: say what it is, so clients show it
	// as a file (it is served as an attachment like any non-raster type).
	if (ct == "text/plain" || ct == "text/xml") && bytes.Contains(bytes.ToLower(head), []byte("<svg")) {
		return "image/svg+xml"
	}
	return ct
}

// dimensions reads an image's width and height from its header; 0, 0 if
// it cannot.
func dimensions(path string) (int, int) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// maxName bounds a file name, in characters.
const maxName = 255

// SafeName returns the last element of a client's file name with control
// characters, path separators and quotes removed, at most 255 characters;
// "file" when nothing is left. It is only ever shown, never used as a
// path.
func SafeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || r == '"' || !unicode.IsPrint(r) && r != ' ' {
			return -1
		}
		return r
	}, name)
	name = strings.Trim(strings.TrimSpace(name), ".")
	if utf8.RuneCountInString(name) > maxName {
		name = string([]rune(name)[:maxName])
	}
	if name == "" {
		return "file"
	}
	return name
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	max int
	bytes.Buffer
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - h.Len(); room > 0 {
		h.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
