package webchat

import (
	"strconv"
	"time"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/internal/ratelimit"
)

// Limits are the widget's rate limits (widget.rate_limits), shared by the
// HTTP API (starts, uploads) and the WebSocket (messages). A limit of 0 is
// off.
type Limits struct {
	startsByIP, messages, messagesByIP, uploads, uploadsByIP *ratelimit.KeyedLimiter
}

// NewLimits returns the limits of the config.
func NewLimits(c config.WidgetRateLimits) *Limits {
	return &Limits{
		startsByIP:   ratelimit.NewKeyedLimiter(c.StartsPerMinutePerIP),
		messages:     ratelimit.NewKeyedLimiter(c.MessagesPerMinute),
		messagesByIP: ratelimit.NewKeyedLimiter(c.MessagesPerMinutePerIP),
		uploads:      ratelimit.NewKeyedLimiter(c.UploadsPerMinute),
		uploadsByIP:  ratelimit.NewKeyedLimiter(c.UploadsPerMinutePerIP),
	}
}

// AllowStart takes a conversation start from the IP's budget, or says how
// long to wait.
func (l *Limits) AllowStart(ip string) (time.Duration, bool) {
	return ratelimit.AllowBoth(time.Now(), l.startsByIP, ip, nil, "")
}

// AllowMessage takes a message from the visitor's and the IP's budgets, or
// from neither and says how long to wait.
func (l *Limits) AllowMessage(contactID int64, ip string) (time.Duration, bool) {
	return ratelimit.AllowBoth(time.Now(), l.messages, strconv.FormatInt(contactID, 10), l.messagesByIP, ip)
}

// AllowUpload is AllowMessage for uploads.
func (l *Limits) AllowUpload(contactID int64, ip string) (time.Duration, bool) {
	return ratelimit.AllowBoth(time.Now(), l.uploads, strconv.FormatInt(contactID, 10), l.uploadsByIP, ip)
}
