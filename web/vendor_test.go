package web

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVendoredFilesMatchRecord recomputes the SHA-256 of every vendored file
// and compares it with vendor/VENDOR.md, and checks that every vendored
// script is recorded there and has its licence beside it.
func TestVendoredFilesMatchRecord(t *testing.T) {
	md, err := os.ReadFile(filepath.Join("vendor", "VENDOR.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Rows: | name | version | licence | source | `file here` | `sha256` |
	row := regexp.MustCompile("(?m)^\\|.*\\| `([^`]+)` \\| `([0-9a-f]{64})` \\|\\s*$")
	recorded := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(md), -1) {
		recorded[m[1]] = m[2]
	}
	if len(recorded) == 0 {
		t.Fatal("no file recorded in VENDOR.md")
	}
	for file, want := range recorded {
		data, err := os.ReadFile(filepath.Join("vendor", filepath.FromSlash(file)))
		if err != nil {
			t.Errorf("%s is recorded but cannot be read: %v", file, err)
			continue
		}
		sum := sha256.Sum256(data)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: SHA-256 %s, VENDOR.md records %s", file, got, want)
		}
		dir := filepath.Join("vendor", filepath.Dir(filepath.FromSlash(file)))
		lic, _ := filepath.Glob(filepath.Join(dir, "LICENSE*"))
		if len(lic) == 0 {
			t.Errorf("%s: no LICENSE file in %s", file, dir)
		}
	}
	err = filepath.WalkDir("vendor", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, "vendor"+string(filepath.Separator)))
		if _, ok := recorded[rel]; !ok {
			t.Errorf("%s is vendored but not recorded in VENDOR.md", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
