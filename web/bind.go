package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// Strict JSON binding. echo's DefaultBinder ignores unknown fields, mixes
// query, path and body, and its errors do not name the field; clients of
// this API get a 400 that says which field is wrong instead.

// errBodyRequired answers a request without the body it needs.
var errBodyRequired = echo.NewHTTPError(http.StatusBadRequest, "request body is required: a JSON object")

// bindJSON decodes the request body, one JSON object, into v. An empty
// body is an error when required, else v is left as it is. Unknown
// fields, wrong types and trailing data are 400s; a field at fault is
// named as an *inbox.InvalidError.
func bindJSON(c echo.Context, v any, required bool) error {
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if errors.Is(err, io.EOF) {
		if required {
			return errBodyRequired
		}
		return nil
	}
	if err != nil {
		return bindError(dec, err)
	}
	// One object, nothing after it but white space.
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var he *echo.HTTPError
		if errors.As(err, &he) { // body limit
			return he
		}
		return echo.NewHTTPError(http.StatusBadRequest,
			fmt.Sprintf("malformed JSON at byte %d: data after the object", dec.InputOffset()))
	}
	return nil
}

func bindError(dec *json.Decoder, err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		he      *echo.HTTPError
		tooMany *http.MaxBytesError
	)
	switch {
	case errors.As(err, &he):
		return he // the body limit's 413
	case errors.As(err, &tooMany):
		return echo.ErrStatusRequestEntityTooLarge
	case errors.As(err, &syntax):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("malformed JSON at byte %d: unexpected end", dec.InputOffset()))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return echo.NewHTTPError(http.StatusBadRequest, "request body must be a JSON object")
		}
		return fieldTypeError(typ)
	}
	// encoding/json has no type for this one.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return &inbox.InvalidError{Field: name, Reason: "unknown field"}
	}
	return echo.NewHTTPError(http.StatusBadRequest, "malformed JSON: "+err.Error())
}

// fieldTypeError is the error of a JSON field of the wrong type; typ.Field
// names it.
func fieldTypeError(typ *json.UnmarshalTypeError) *inbox.InvalidError {
	return &inbox.InvalidError{Field: typ.Field, Reason: "must be " + jsonKind(typ.Type.Kind().String())}
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case kind == "bool":
		return "true or false"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case strings.HasPrefix(kind, "float"):
		return "a number"
	case kind == "slice", kind == "array":
		return "an array"
	}
	return "an object"
}

// required returns the error of a required field that is missing or empty.
func required(field, value string) error {
	if strings.TrimSpace(value) == "" {
		return &inbox.InvalidError{Field: field, Reason: "is required"}
	}
	return nil
}

// queryInt reads an optional integer query parameter; absent is 0.
func queryInt(c echo.Context, name string) (int64, error) {
	v := c.QueryParam(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &inbox.InvalidError{Field: name, Reason: "must be a non-negative integer"}
	}
	return n, nil
}

// pathID parses the :id of the path. A malformed id is ErrNotFound, the
// same answer as an unknown one.
func pathID(c echo.Context) (int64, error) {
	return inbox.ParseID(c.Param("id"))
}

// requireJSON refuses API writes whose body is not JSON (415). Besides
// keeping the handlers' input to one format, it stops cross-site HTML
// forms, which cannot send application/json without a CORS preflight.
func (s *Server) requireJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if !isWrite(r.Method) {
			return next(c)
		}
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if err != nil || mt != echo.MIMEApplicationJSON {
			return echo.NewHTTPError(http.StatusUnsupportedMediaType, "the request body must be JSON with Content-Type: application/json")
		}
		return next(c)
	}
}
