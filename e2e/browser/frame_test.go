package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Frame is an iframe of a page (the widget inside a shop's page, on
// another origin), driven the way a person does: its DOM is read through
// an isolated world in the frame (the page's own scripts cannot reach a
// cross-origin frame, and the test does not need the frame's globals),
// clicks are real mouse events at the element's place on the screen, and
// typing is real keyboard input into the focused element.
type Frame struct {
	p       *Page
	urlPart string // a substring of the frame's URL
	frameID cdp.FrameID
	ctxID   runtime.ExecutionContextID
	iframe  string // CSS selector of the iframe element in the page
}

// frame returns the page's iframe whose element matches iframeSel and
// whose URL contains urlPart.
func (p *Page) frame(iframeSel, urlPart string) *Frame {
	return &Frame{p: p, urlPart: urlPart, iframe: iframeSel}
}

// find locates the frame and makes an isolated world in it.
func (f *Frame) find(ctx context.Context, t *chromedp.Target) error {
	tree, err := cdp.Call(ctx, t, page.GetFrameTree, cdp.Empty{})
	if err != nil {
		return err
	}
	var walk func(ft *page.FrameTree) *cdp.Frame
	walk = func(ft *page.FrameTree) *cdp.Frame {
		for _, c := range ft.ChildFrames {
			if strings.Contains(c.Frame.URL, f.urlPart) {
				return c.Frame
			}
			if fr := walk(c); fr != nil {
				return fr
			}
		}
		return nil
	}
	fr := walk(tree.FrameTree)
	if fr == nil {
		return fmt.Errorf("no frame with %q in its URL", f.urlPart)
	}
	w, err := cdp.Call(ctx, t, page.CreateIsolatedWorld, page.CreateIsolatedWorldParams{FrameID: fr.ID, WorldName: "imtest"})
	if err != nil {
		return err
	}
	f.frameID, f.ctxID = fr.ID, w.ExecutionContextID
	return nil
}

// evalObject evaluates js in the frame; byValue false returns a remote object.
func (f *Frame) evalObject(js string, byValue bool) (*runtime.RemoteObject, error) {
	ctx, cancel := context.WithTimeout(f.p.ctx, wait)
	defer cancel()
	var out *runtime.RemoteObject
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for attempt := 0; ; attempt++ {
			if f.ctxID == 0 {
				if err := f.find(ctx, t); err != nil {
					return err
				}
			}
			res, err := cdp.Call(ctx, t, runtime.Evaluate, runtime.EvaluateParams{
				Expression: js, ContextID: f.ctxID, ReturnByValue: &byValue, AwaitPromise: ptr(true),
			})
			if err == nil && res.ExceptionDetails == nil {
				out = res.Result
				return nil
			}
			if err == nil {
				err = fmt.Errorf("%s", exceptionText(res.ExceptionDetails))
			}
			// The frame navigated (a reload): find it again.
			f.ctxID = 0
			if attempt >= 1 {
				return err
			}
		}
	}))
	return out, err
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

func ptr[T any](v T) *T { return &v }

// evalFrame evaluates a JavaScript expression in the frame.
func evalFrame[T any](f *Frame, js string) (T, error) {
	var zero T
	obj, err := f.evalObject(js, true)
	if err != nil {
		return zero, err
	}
	if obj == nil || obj.Value == nil {
		return zero, fmt.Errorf("no value")
	}
	var v T
	if err := json.Unmarshal(obj.Value, &v); err != nil {
		return zero, err
	}
	return v, nil
}

// waitJS waits until the expression is true in the frame.
func (f *Frame) waitJS(what, js string) {
	f.p.t.Helper()
	deadline := time.Now().Add(wait)
	var last error
	for time.Now().Before(deadline) {
		var ok bool
		if ok, last = evalFrame[bool](f, "!!("+js+")"); last == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.p.shot("timeout")
	f.p.t.Fatalf("%s (frame): timed out waiting for %s (%v)", f.p.name, what, last)
}

func (f *Frame) waitVisible(sel string) {
	f.p.t.Helper()
	f.waitJS(sel+" visible", visible(sel))
}

func (f *Frame) waitGone(sel string) {
	f.p.t.Helper()
	f.waitJS(sel+" gone", "!"+visible(sel))
}

// str evaluates an expression in the frame to a string.
func (f *Frame) str(js string) string {
	f.p.t.Helper()
	s, err := evalFrame[string](f, "String("+js+")")
	if err != nil {
		f.p.t.Fatalf("%s (frame): eval %s: %v", f.p.name, js, err)
	}
	return s
}

// click clicks the element sel of the frame with the mouse, at its centre
// on the screen.
func (f *Frame) click(sel string) {
	f.p.t.Helper()
	f.waitVisible(sel)
	type pt struct{ X, Y float64 }
	in, err := evalFrame[pt](f, "(e => { e.scrollIntoView({block: 'nearest'}); const r = e.getBoundingClientRect(); return {X: r.left + r.width / 2, Y: r.top + r.height / 2} })("+q(sel)+")")
	if err != nil {
		f.p.t.Fatalf("%s (frame): place of %s: %v", f.p.name, sel, err)
	}
	at, err := eval[pt](f.p, "(e => { const r = e.getBoundingClientRect(); return {X: r.left + e.clientLeft, Y: r.top + e.clientTop} })("+q(f.iframe)+")")
	if err != nil {
		f.p.t.Fatalf("%s: place of the frame: %v", f.p.name, err)
	}
	f.p.run("click "+sel+" in the frame", chromedp.MouseClickXY(at.X+in.X, at.Y+in.Y))
}

// typeText clicks the field sel of the frame and types text into it.
func (f *Frame) typeText(sel, text string) {
	f.p.t.Helper()
	f.click(sel)
	f.waitJS(sel+" focused", "document.activeElement === "+q(sel))
	f.p.run("type into "+sel, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	}))
}

// pressEnter presses Enter in the focused element (in the frame).
func (f *Frame) pressEnter() {
	f.p.t.Helper()
	f.p.run("press Enter", enter(0))
}

// upload chooses a file in the frame's file input sel.
func (f *Frame) upload(sel, path string) {
	f.p.t.Helper()
	obj, err := f.evalObject(q(sel), false)
	if err != nil || obj == nil || obj.ObjectID == "" {
		f.p.t.Fatalf("%s (frame): find %s: %v", f.p.name, sel, err)
	}
	f.p.run("choose "+path, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, dom.SetFileInputFiles, dom.SetFileInputFilesParams{Files: []string{path}, ObjectID: obj.ObjectID})
		return err
	}))
}

// shown returns the seqs and texts of the messages shown in the frame.
func (f *Frame) shown() (seqs []int, texts []string) {
	f.p.t.Helper()
	raw := f.str("JSON.stringify(" + qa(tid("message")+"[data-seq]") + ".map(m => [Number(m.dataset.seq), m.querySelector('" + tid("message-body") + "')?.textContent ?? '']))")
	var rows [][2]any
	if err := json.Unmarshal([]byte(raw), &rows); err != nil {
		f.p.t.Fatalf("%s: decode %s: %v", f.p.name, raw, err)
	}
	for _, r := range rows {
		seqs = append(seqs, int(r[0].(float64)))
		texts = append(texts, r[1].(string))
	}
	return seqs, texts
}

// acceptDialogs answers every confirm() of the page with OK, as a person
// who means it.
func (p *Page) acceptDialogs() {
	p.t.Helper()
	ch := make(chan struct{}, 16)
	err := chromedp.Listen(p.ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	if err != nil {
		p.t.Fatalf("%s: listen for dialogs: %v", p.name, err)
	}
	go func() {
		for {
			select {
			case <-p.ctx.Done():
				return
			case <-ch:
				ctx, cancel := context.WithTimeout(p.ctx, wait)
				_ = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
					_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
					return err
				}))
				cancel()
			}
		}
	}()
}

// hostSite serves a shop's own site on another origin (another port of
// 127.0.0.1): pages that carry the given embed line.
func hostSite(t *testing.T, embed string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		title := "Green Leaf Plants"
		if r.URL.Path != "/" {
			title = "Monstera deliciosa · Green Leaf Plants"
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font:16px/1.5 Georgia,serif;margin:0;background:#f6f3ea;color:#263226}header{background:#2f5d3a;color:#fff;padding:18px 28px;font-size:22px}
main{padding:28px;max-width:760px}button{all:unset;color:red}iframe{border:5px solid red}</style></head>
<body><header>%s</header><main><h1>Monstera deliciosa</h1><p>A easy-going houseplant with split leaves. 24.90 EUR.</p>
<p><a href="/plants/monstera">Details</a></p></main>
%s
</body></html>`, title, title, embed)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// navigate goes to an absolute URL (another origin than the server's).
func navigate(u string) chromedp.Action[chromedp.Void] { return chromedp.Navigate(u) }
