package web

// What a browser may do with the server's pages, and which requests it
// may send with an agent's cookie (docs/security.md):
//
//   - Every HTML page carries a Content-Security-Policy that allows
//     script only from this server's files: no inline script, no eval, no
//     plugins (object-src 'none'), no <base>, no framing by any site.
//     The dashboard's also lets the email frame show the remote images
//     the agent asked for. Beside it, on every answer (server.go):
//     X-Content-Type-Options: nosniff, Referrer-Policy: same-origin, and
//     X-Frame-Options: DENY (for browsers without frame-ancestors) but
//     on the widget script, which other sites embed.

// The Content-Security-Policies of the pages. style-src allows inline
// styles: the widget's Shadow DOM falls back to a <style> where
// constructed style sheets are missing, and sanitized email HTML keeps
// its style attributes. Scripts never: whatever reaches the DOM from a
// user stays inert.
const (
	// cspBase is the part every page of the server shares.
	cspBase = "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; " +
		"form-action 'self'; frame-ancestors 'none'; style-src 'self' 'unsafe-inline'"
	// pageCSP is the policy of the demo site's pages and of setup: images
	// from here, data: URLs and blob: URLs (the widget shows image
	// attachments from blobs it downloaded with the visitor's token).
	pageCSP = cspBase + "; img-src 'self' data: blob:"
	// dashboardCSP is the policy of /inbox. An email's sanitized HTML is
	// shown in a sandboxed iframe (srcdoc, no allow-scripts), which
	// inherits this policy: its images may come from any http(s) host,
	// but only once the agent asks, because the sanitizer leaves remote
	// images in data-remote-src (inbox.SanitizeEmailHTML) and the
	// dashboard copies them to src on request. frame-src covers that
	// frame (about:srcdoc) and blob: previews.
	dashboardCSP = cspBase + "; img-src 'self' data: blob: https: http:; media-src 'self' data: blob:; frame-src 'self' blob: about:"
	// rateCSP is the rating page's: no script at all, its stylesheet,
	// and its form posting only to itself.
	rateCSP = "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// pagePolicies are the policies of the HTML files under static/ by name,
// whether served as a page or under /static/; an HTML file not listed
// gets pageCSP.
var pagePolicies = map[string]string{
	"inbox.html": dashboardCSP,
}

// pagePolicy returns the Content-Security-Policy of the HTML file under
// static/ with this name.
func pagePolicy(name string) string {
	if p, ok := pagePolicies[name]; ok {
		return p
	}
	return pageCSP
}
