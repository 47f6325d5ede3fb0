package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/imserver/imserver/internal/imtest"
)

// wait is how long a page gets to show what a test waits for. Generous:
// the machine may be busy; a test never asserts on timing.
const wait = 30 * time.Second

// chromiumPath finds the system Chromium; tests skip without it, except in
// CI, where they fail.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("IM_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is required in CI: apt-get install -y chromium (see .ci/run)")
	}
	t.Skip("no Chromium at /usr/bin/chromium: apt-get install -y chromium to run the browser tests")
	return ""
}

// Browser is one headless Chromium for a test; each page gets its own
// browser context (separate storage), as different people's browsers.
type Browser struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
}

// newBrowser launches Chromium for the test and closes it at cleanup.
func newBrowser(t *testing.T) *Browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	if err := chromedp.Do(bctx); err != nil {
		bcancel()
		acancel()
		t.Fatalf("start Chromium: %v", err)
	}
	b := &Browser{t: t, ctx: bctx, cancel: func() { bcancel(); acancel() }}
	t.Cleanup(b.cancel)
	return b
}

// Page is a tab in its own browser context, with its console watched.
type Page struct {
	t    *testing.T
	name string
	ctx  context.Context
	base string

	mu      sync.Mutex
	errs    []string
	allowed []string  // substrings of console errors that are expected
	until   time.Time // if set, allowed covers errors from before it only
}

// Viewports.
var (
	Desktop = [2]int64{1280, 800}
	Phone   = [2]int64{360, 740}
)

// newPage opens a tab of the given size in a fresh browser context.
func (b *Browser) newPage(name, base string, size [2]int64) *Page {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	p := &Page{t: b.t, name: name, ctx: ctx, base: base}
	p.watch()

	viewport := chromedp.EmulateViewport(size[0], size[1])
	if size[0] < 600 {
		viewport = chromedp.EmulateViewport(size[0], size[1], chromedp.EmulateScale(2), chromedp.EmulateMobile)
	}
	if err := chromedp.Do(ctx, viewport); err != nil {
		b.t.Fatalf("%s: set viewport: %v", name, err)
	}
	b.t.Cleanup(func() { p.checkConsole() })
	return p
}

// watch records the tab's console errors and uncaught exceptions.
func (p *Page) watch() {
	p.t.Helper()
	err := chromedp.Listen(p.ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range ev.Args {
					if a.Value != nil {
						parts = append(parts, string(a.Value))
					} else {
						parts = append(parts, a.Description)
					}
				}
				p.record("console."+string(ev.Type)+": "+strings.Join(parts, " "), at(ev.Timestamp))
			}
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				msg += " " + d.Exception.Description
			}
			p.record(fmt.Sprintf("exception: %s (%s:%d)", msg, d.URL, d.LineNumber), at(ev.Timestamp))
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				p.record(fmt.Sprintf("log %s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL), at(ev.Entry.Timestamp))
			}
		}
	})
	if err != nil {
		p.t.Fatalf("%s: open a tab: %v", p.name, err)
	}
}

// newTab opens another tab in the same browser context (the same person's
// second tab: it shares the page's storage).
func (p *Page) newTab(name string) *Page {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	p.t.Cleanup(cancel)
	tab := &Page{t: p.t, name: name, ctx: ctx, base: p.base}
	tab.watch()
	p.t.Cleanup(func() { tab.checkConsole() })
	return tab
}

// record notes a console error the browser reported at the time at.
func (p *Page) record(msg string, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.allowed {
		if strings.Contains(msg, a) && (p.until.IsZero() || at.Before(p.until)) {
			return
		}
	}
	p.errs = append(p.errs, msg)
}

// at is the time of a browser timestamp (milliseconds since the epoch).
func at(ts runtime.Timestamp) time.Time {
	return time.UnixMilli(int64(ts.Float64()))
}

// allow ignores console errors containing s from now on (the browser's own
// reports of a server that is down, say).
func (p *Page) allow(s ...string) {
	p.mu.Lock()
	if !p.until.IsZero() {
		p.allowed, p.until = nil, time.Time{}
	}
	p.allowed = append(p.allowed, s...)
	p.mu.Unlock()
}

// disallow ends the allowances: errors the browser reports from now on
// count again. The browser's reports arrive after the fact (a failed
// WebSocket's log entry may come after the page is back online), so the
// allowances still cover what it reports with an earlier timestamp.
func (p *Page) disallow() {
	p.mu.Lock()
	p.until = time.Now()
	p.mu.Unlock()
}

// checkConsole fails the test on any console error or uncaught exception.
func (p *Page) checkConsole() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("%s: browser console: %s", p.name, e)
	}
	p.errs = nil
}

// run runs chromedp actions, failing the test on error.
func (p *Page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// close closes the tab, as a user closing the page does.
func (p *Page) close() {
	p.t.Helper()
	p.checkConsole()
	if err := chromedp.Cancel(p.ctx); err != nil {
		p.t.Fatalf("%s: close: %v", p.name, err)
	}
}

// open navigates to path on the server.
func (p *Page) open(path string) {
	p.t.Helper()
	p.run("open "+path, chromedp.Navigate(p.base+path))
}

// tid is the CSS selector of a data-testid.
func tid(id string) string { return `[data-testid="` + id + `"]` }

// eval evaluates a JavaScript expression.
func eval[T any](p *Page, js string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](js))
}

// waitJS waits until the JavaScript expression is true.
func (p *Page) waitJS(what, js string) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = eval[bool](p, "!!("+js+")"); last == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.shot("timeout")
	p.t.Fatalf("%s: timed out waiting for %s (%v)", p.name, what, last)
}

// q returns a JavaScript expression selecting the first match of a CSS selector.
func q(sel string) string { return "document.querySelector(" + strconv.Quote(sel) + ")" }

// qa returns a JavaScript expression of all matches, as an array.
func qa(sel string) string { return "[...document.querySelectorAll(" + strconv.Quote(sel) + ")]" }

// visible is a JavaScript expression: the selector matches a rendered element.
func visible(sel string) string {
	return "(e => !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden')(" + q(sel) + ")"
}

// waitVisible waits until sel is shown.
func (p *Page) waitVisible(sel string) {
	p.t.Helper()
	p.waitJS(sel+" visible", visible(sel))
}

// waitGone waits until nothing matches sel (or nothing matching is shown).
func (p *Page) waitGone(sel string) {
	p.t.Helper()
	p.waitJS(sel+" gone", "!"+visible(sel))
}

// click clicks the first element matching sel, once it is visible.
func (p *Page) click(sel string) {
	p.t.Helper()
	p.waitVisible(sel)
	p.run("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// typeText types into the field sel like a person (key events).
func (p *Page) typeText(sel, text string) {
	p.t.Helper()
	p.waitVisible(sel)
	p.run("type into "+sel, chromedp.Focus(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), text))
}

// setValue clears and types into the field sel.
func (p *Page) setValue(sel, text string) {
	p.t.Helper()
	p.waitVisible(sel)
	if _, err := eval[bool](p, "(e => { e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); return true })("+q(sel)+")"); err != nil {
		p.t.Fatalf("%s: clear %s: %v", p.name, sel, err)
	}
	p.typeText(sel, text)
}

// pressEnter presses Enter in the focused element.
func (p *Page) pressEnter() {
	p.t.Helper()
	p.run("press Enter", enter(0))
}

// enter is a key press of Enter with modifiers, as a keyboard makes it: a
// keyDown that carries the text (so that preventDefault on keydown stops
// the new line, as in a real browser), then a keyUp.
func enter(modifiers int64) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyDown, Key: "Enter", Code: "Enter", Text: "\r", UnmodifiedText: "\r",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Modifiers: modifiers}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13, Modifiers: modifiers}
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// str evaluates a JavaScript expression to a string.
func (p *Page) str(js string) string {
	p.t.Helper()
	s, err := eval[string](p, "String("+js+")")
	if err != nil {
		p.t.Fatalf("%s: eval %s: %v", p.name, js, err)
	}
	return s
}

// signIn signs in through the form on the current page and waits for the
// app (the logout button is the sign that sign-in finished).
func (p *Page) signIn(u imtest.User) {
	p.t.Helper()
	p.open("/")
	p.setValue(tid("auth-username"), u.Username)
	p.setValue(tid("auth-password"), "password1")
	p.click(tid("auth-login"))
	p.waitVisible(tid("logout"))
	p.waitJS("connection online", q(tid("connection"))+"?.dataset.state === 'online'")
}

// shotDir is where screenshots go: docs/screenshots with IM_SCREENSHOTS=1,
// else the test's temporary directory.
func shotDir(t *testing.T) string {
	if os.Getenv("IM_SCREENSHOTS") == "1" {
		dir := filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

var shotDirs sync.Map // test name → dir

// shot saves a PNG of the page as name.png.
func (p *Page) shot(name string) {
	p.t.Helper()
	d, _ := shotDirs.LoadOrStore(p.t.Name(), shotDir(p.t))
	ctx, cancel := context.WithTimeout(p.ctx, wait)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("%s: screenshot %s: %v", p.name, name, err)
		return
	}
	path := filepath.Join(d.(string), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Logf("screenshot: %v", err)
	}
}

// shiftEnter types a new line in the focused field.
func (p *Page) shiftEnter() {
	p.t.Helper()
	p.run("press Shift+Enter", enter(8))
}
