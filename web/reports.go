package web

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/microdeets/microchat/inbox"
)

// defaultReportSpan is the period of a report whose from is not given.
const defaultReportSpan = 30 * 24 * time.Hour

// reportPeriod reads the from and to query parameters (RFC 3339; to
// exclusive): to defaults to now, from to 30 days before to. A value that
// is not RFC 3339 is a 400 naming it; inbox.OperatorsReport checks the
// span.
func (s *Server) reportPeriod(c echo.Context) (from, to time.Time, err error) {
	to = s.store.Now()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"to", &to}, {"from", &from}} {
		v := c.QueryParam(p.name)
		if v == "" {
			continue
		}
		if *p.t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return from, to, &inbox.InvalidError{Field: p.name, Reason: "must be a time in RFC 3339 form, e.g. 2026-01-31T00:00:00Z"}
		}
	}
	if from.IsZero() {
		from = to.Add(-defaultReportSpan)
	}
	return from, to, nil
}

// readReport computes the operator report of the request's period.
func (s *Server) readReport(c echo.Context) (inbox.OperatorsReport, error) {
	from, to, err := s.reportPeriod(c)
	if err != nil {
		return inbox.OperatorsReport{}, err
	}
	return s.store.OperatorsReport(c.Request().Context(), from, to)
}

// operatorsReport answers Reports > Operators for a period (every agent):
// inbox.OperatorsReport has the figures and the first response rule.
func (s *Server) operatorsReport(c echo.Context) error {
	rep, err := s.readReport(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, rep)
}

// operatorsCSVHeader is the header row of the operator report's CSV.
var operatorsCSVHeader = []string{"agent_id", "name", "disabled", "conversations_joined", "ratings", "average_rating",
	"rating_1", "rating_2", "rating_3", "rating_4", "rating_5", "median_first_response_seconds"}

// operatorsReportCSV is operatorsReport as a CSV download (RFC 4180, UTF-8,
// CRLF lines): a header row, then one row per agent. An empty cell is a
// figure that does not exist (no rating, no response). Text cells are
// neutralised against formula injection (csvText).
func (s *Server) operatorsReportCSV(c echo.Context) error {
	rep, err := s.readReport(c)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	w.Write(operatorsCSVHeader)
	for _, op := range rep.Operators {
		row := []string{strconv.FormatInt(op.AgentID, 10), csvText(op.Name), strconv.FormatBool(op.Disabled),
			strconv.FormatInt(op.ConversationsJoined, 10), strconv.FormatInt(op.Ratings.Count, 10), csvNumber(op.Ratings.Average)}
		for _, n := range op.Ratings.Distribution {
			row = append(row, strconv.FormatInt(n, 10))
		}
		row = append(row, csvNumber(op.MedianFirstResponseSeconds))
		w.Write(row)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return err
	}
	name := fmt.Sprintf("operators-%s-%s.csv", rep.From.Format("20060102T150405Z"), rep.To.Format("20060102T150405Z"))
	c.Response().Header().Set(echo.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
}

// csvText makes a text cell safe to open in a spreadsheet: a cell that
// starts with =, +, -, @, a tab or a carriage return would be read as a
// formula (CSV injection, OWASP), so it gets a leading apostrophe, which
// spreadsheets show as text. Quoting commas, quotes and line breaks is
// encoding/csv's.
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// csvNumber is a figure's cell: empty for none.
func csvNumber(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}
