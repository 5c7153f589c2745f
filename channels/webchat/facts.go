package webchat

import (
	"net/netip"

	"github.com/mileusna/useragent"
	"github.com/phuslu/iploc"

	"github.com/microdeets/microchat/inbox"
)

// FactsOf returns what a visitor's request tells about them (spec rule
// 11): browser, version and operating system from the User-Agent, the IP
// address (the caller's c.RealIP(), which believes X-Forwarded-For only
// from trusted proxies) and its country, from the database inside the
// iploc module: nothing is downloaded at run time.
func FactsOf(userAgent, ip string) inbox.Facts {
	ua := useragent.Parse(userAgent)
	f := inbox.Facts{Browser: ua.Name, BrowserVersion: ua.Version, OS: ua.OS, IP: ip}
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		if a.IsGlobalUnicast() && !a.IsPrivate() {
			f.Country = iploc.IPCountry(a)
		}
	}
	return f
}

// sameFacts reports whether the contact has these facts stored already,
// so that a reconnect does not write them again.
func sameFacts(c inbox.Contact, f inbox.Facts) bool {
	return c.Browser == f.Browser && c.BrowserVersion == f.BrowserVersion && c.OS == f.OS && c.IP == f.IP && c.Country == f.Country
}
