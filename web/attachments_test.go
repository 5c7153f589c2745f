package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/microdeets/microchat/config"
	"github.com/microdeets/microchat/inbox"
	"github.com/microdeets/microchat/inbox/inboxtest"
)

// iPhoneHEIC is the start of a photo from an iPhone camera: the ftyp box
// with major brand heic (issue 11, item 14), then the meta box's header.
var iPhoneHEIC = []byte("\x00\x00\x00\x24ftypheic\x00\x00\x00\x00mif1MiHBMiHEmiafheic\x00\x00\x0f\x1emeta\x00\x00\x00\x00")

// elfExecutable is the header of a 64-bit Linux program.
var elfExecutable = append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), make([]byte, 44)...)

// TestUploadTypes: both uploads, the widget's and an agent's, take a
// HEIC photo with its type, offer it as a download (only PNG, JPEG, GIF
// and WebP are shown inline), and refuse a program with 415 and a
// message naming the detected type and why.
func TestUploadTypes(t *testing.T) {
	inboxtest.Run(t, func(t *testing.T, url string) {
		e := newEnv(t, url, func(c *config.Config) { c.Limits.MaxUploadBytes = 4096 })
		v := e.startVisitor("Uma")
		e.agent("alice@example.com", inbox.RoleAgent)
		ac := e.login("alice@example.com")
		for _, up := range []struct {
			who  string
			c    *client
			path string
		}{
			{"visitor", v.client, "/api/v1/widget/uploads"},
			{"agent", ac, "/api/v1/conversations/" + itoa64(v.start.Conversation.ID) + "/attachments"},
		} {
			var a attachmentAnswer
			up.c.upload(up.path, "IMG_0001.HEIC", iPhoneHEIC).want(http.StatusCreated).decode(&a)
			if a.Attachment.ContentType != "image/heic" {
				t.Fatalf("%s: HEIC stored as %q, want image/heic", up.who, a.Attachment.ContentType)
			}
			if up.who == "visitor" {
				r := v.do("GET", "/api/v1/widget/attachments/"+itoa64(a.Attachment.ID), nil).want(http.StatusOK)
				if r.header.Get("Content-Type") != "application/octet-stream" || !strings.HasPrefix(r.header.Get("Content-Disposition"), "attachment") {
					t.Fatalf("HEIC served with %v, want a download", r.header)
				}
			}
			r := up.c.upload(up.path, "photo.jpg", elfExecutable).want(http.StatusUnsupportedMediaType)
			if msg := r.apiErr().Error; !strings.HasPrefix(msg, "application/x-executable: programs are not accepted") ||
				!strings.Contains(msg, "HEIC") {
				t.Fatalf("%s: 415 says %q, want the type, the reason and what is accepted", up.who, msg)
			}
			r = up.c.upload(up.path, "x.bin", []byte{0, 1, 2, 3, 0xfe, 0xfd, 0, 7}).want(http.StatusUnsupportedMediaType)
			if msg := r.apiErr().Error; !strings.HasPrefix(msg, "application/octet-stream: the type of this file could not be recognised") {
				t.Fatalf("%s: 415 for unknown binary says %q", up.who, msg)
			}
		}
	})
}
