package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// Attachments are uploaded as multipart/form-data (field "file") by agents
// and visitors, and stored in the database. The rules, for files from
// strangers:
//
//   - The type is decided from the content (inbox.DetectFileType), never
//     from the name or the client's Content-Type. Accepted: what phones
//     and desktops produce (images with HEIC and AVIF, PDF, text, Office
//     and OpenDocument files, archives, audio and video). Refused with
//     415 and a message that names the detected type and why: programs,
//     and whatever is not recognised or not on the list.
//   - The name the user gave is display text only: its last path element,
//     without control or format characters, at most 255 bytes. The
//     server's identity of a file is its id.
//   - Served with Content-Security-Policy: sandbox and nosniff. Only PNG,
//     JPEG, GIF and WebP, sniffed again when served, are shown inline with
//     their type; everything else, SVG and HTML above all, is a download:
//     Content-Disposition: attachment, application/octet-stream.

// uploadOverhead is what a multipart body may carry beyond the file: the
// boundaries and part headers.
const uploadOverhead = 64 << 10

// upload is a file read from a multipart request.
type upload struct {
	name, contentType string
	data              []byte
}

// readUpload reads the "file" part of a multipart request, refusing more
// than limits.max_upload_bytes (413) and types that are not accepted (415).
func (s *Server) readUpload(c echo.Context) (upload, error) {
	limit := int64(s.cfg.Limits.MaxUploadBytes)
	tooLarge := echo.NewHTTPError(http.StatusRequestEntityTooLarge,
		fmt.Sprintf("the file is larger than the limit of %s", s.cfg.Limits.MaxUploadBytes))
	r := c.Request()
	if r.ContentLength > limit+uploadOverhead {
		return upload{}, tooLarge
	}
	r.Body = http.MaxBytesReader(c.Response(), r.Body, limit+uploadOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		return upload{}, echo.NewHTTPError(http.StatusBadRequest, "the body must be multipart/form-data with a file in the field \"file\"")
	}
	for {
		part, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return upload{}, &inbox.InvalidError{Field: "file", Reason: "is required"}
		case errors.As(err, &mbe):
			return upload{}, tooLarge
		case err != nil:
			return upload{}, echo.NewHTTPError(http.StatusBadRequest, "malformed multipart body")
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		data, err := io.ReadAll(io.LimitReader(part, limit+1))
		if errors.As(err, &mbe) || int64(len(data)) > limit {
			return upload{}, tooLarge
		}
		if err != nil {
			return upload{}, echo.NewHTTPError(http.StatusBadRequest, "malformed multipart body")
		}
		if len(data) == 0 {
			return upload{}, &inbox.InvalidError{Field: "file", Reason: "is empty"}
		}
		ct, err := inbox.DetectFileType(data)
		var refused *inbox.RefusedTypeError
		if errors.As(err, &refused) {
			return upload{}, echo.NewHTTPError(http.StatusUnsupportedMediaType, refused.Error()+"; "+inbox.AcceptedTypes)
		} else if err != nil {
			return upload{}, err
		}
		// The name is user text like any other: NUL or invalid UTF-8 is
		// a 400 (inbox.SingleLine), then it is made a display name.
		name, err := inbox.SingleLine("filename", part.FileName())
		if err != nil {
			return upload{}, err
		}
		return upload{name: displayName(name), contentType: ct, data: data}, nil
	}
}

// inlineImage reports whether a sniffed type may be shown inline: raster
// images that browsers never run script in.
func inlineImage(ct string) bool {
	switch ct {
	case "image/png", "image/jpeg", "image/gif", "image/webp":
		return true
	}
	return false
}

// displayName makes the name a user gave a file safe to show and to put
// in a header: the last path element, cleaned as any single line of user
// text (inbox.CleanLine: no control characters, bidirectional overrides
// or invisible format characters, trimmed), at most 255 bytes; "file" if
// nothing is left.
func displayName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = inbox.CleanLine(name)
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// serveAttachment sends an attachment's bytes with the headers above.
func serveAttachment(c echo.Context, a inbox.Attachment) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentSecurityPolicy, "sandbox; default-src 'none'")
	h.Set(echo.HeaderXContentTypeOptions, "nosniff")
	h.Set(echo.HeaderCacheControl, "private, no-cache")
	ct := http.DetectContentType(a.Data)
	disposition := "inline"
	if !inlineImage(ct) {
		ct, disposition = echo.MIMEOctetStream, "attachment"
	}
	cd := mime.FormatMediaType(disposition, map[string]string{"filename": displayName(a.Name)})
	if cd == "" {
		cd = disposition
	}
	h.Set(echo.HeaderContentDisposition, cd)
	return c.Blob(http.StatusOK, ct, a.Data)
}

type attachmentAnswer struct {
	Attachment inbox.Attachment `json:"attachment"`
}

// storeUpload reads an upload and stores it in a conversation as by's,
// within apiTimeout once the body is read.
func (s *Server) storeUpload(c echo.Context, by inbox.Uploader, conversationID func(context.Context) (int64, error)) error {
	up, err := s.readUpload(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), apiTimeout)
	defer cancel()
	id, err := conversationID(ctx)
	if err != nil {
		return err
	}
	a, err := s.store.AddAttachment(ctx, id, by, up.name, up.contentType, up.data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, attachmentAnswer{Attachment: a})
}

// uploadAttachment stores an agent's file in a conversation, to be sent
// with a reply of the same agent that names it in attachment_ids.
func (s *Server) uploadAttachment(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	by := inbox.Uploader{Author: inbox.AuthorAgent, AgentID: agentOf(c).ID}
	return s.storeUpload(c, by, func(ctx context.Context) (int64, error) {
		_, err := s.store.Conversation(ctx, id)
		return id, err
	})
}

// downloadAttachment sends a conversation's attachment to an agent: one
// sent with a message, or the agent's own upload (404 otherwise).
func (s *Server) downloadAttachment(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	aid, err := inbox.ParseID(c.Param("aid"))
	if err != nil {
		return err
	}
	a, err := s.store.OpenAttachment(c.Request().Context(), id, agentOf(c).ID, aid)
	if err != nil {
		return err
	}
	return serveAttachment(c, a)
}
