// Package browsertest drives the chat widget in Debian's Chromium
// (chromedp) against a real Microchat server in the same process: the
// customer guide's whole conversation, seen from the visitor's browser and
// from the agents' API. It has only tests; scripts/test-deps.sh installs
// the browser, and without it the tests fail rather than skip.
//
// Screenshots of the main states go to $MICROCHAT_ARTIFACTS, or else to
// web/testdata/screenshots (git-ignored).
package browsertest
