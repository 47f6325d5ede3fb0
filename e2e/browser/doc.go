// Package browser holds the browser tests of the web client: the real
// server in-process (internal/imtest) and the system's headless Chromium
// driven through chromedp, by the data-testid attributes of UI.md, the way
// a person uses the pages. Without Chromium the tests skip, except in CI
// (the CI variable set), where they fail.
package browser
