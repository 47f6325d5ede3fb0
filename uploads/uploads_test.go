package uploads

import "testing"

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"cat.png":                  "cat.png",
		"../../etc/passwd":         "passwd",
		`..\..\windows\system.ini`: "system.ini",
		"a\x00b\nc\u202ed.txt":     "abcd.txt",
		`say "hi".txt`:             "say hi.txt",
		"..":                       "file",
		"":                         "file",
		" .hidden ":                "hidden",
		"dir/":                     "file",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := make([]rune, 300)
	for i := range long {
		long[i] = 'é'
	}
	if got := []rune(SafeName(string(long))); len(got) != maxName {
		t.Errorf("a 300-character name kept %d characters", len(got))
	}
}

func TestSniff(t *testing.T) {
	for in, want := range map[string]string{
		"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR": "image/png",
		"<html><body>":                        "text/html",
		"<?xml version=\"1.0\"?><svg>":        "image/svg+xml",
		"<SVG xmlns=\"…\">":                   "image/svg+xml",
		"GIF89a":                              "image/gif",
		"hello":                               "text/plain",
		"\x00\x01\x02":                        "application/octet-stream",
	} {
		if got := sniff([]byte(in)); got != want {
			t.Errorf("sniff(%q) = %q, want %q", in, got, want)
		}
	}
	for _, ct := range []string{"image/svg+xml", "text/html", "application/pdf"} {
		if Inline(ct) {
			t.Errorf("%s served inline", ct)
		}
	}
}
