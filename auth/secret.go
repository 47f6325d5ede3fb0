package auth

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// NewSecret returns a random 32-byte key, hex-encoded.
func NewSecret() string {
	b := make([]byte, MinSecretLen)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// LoadOrCreateSecret reads the key kept in path, or creates the file with
// a new random key and mode 0600. It reports whether it created it. A file
// readable by others is refused.
func LoadOrCreateSecret(path string) (secret []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, false, err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("%s is readable by other users (mode %v): chmod 600 it", path, fi.Mode().Perm())
		}
		s := strings.TrimSpace(string(b))
		if len(s) < MinSecretLen {
			return nil, false, fmt.Errorf("%s holds a key shorter than %d bytes", path, MinSecretLen)
		}
		return []byte(s), false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, false, err
	}
	s := NewSecret()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) { // another process won the race
		return LoadOrCreateSecret(path)
	}
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	return []byte(s), true, nil
}
