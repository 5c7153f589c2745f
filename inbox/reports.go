package inbox

import (
	"cmp"
	"context"
	"database/sql"
	"math"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Reports > Operators (issue 13, item 9; rule 3: a rating counts for every
// agent who took part). Every figure is computed by the database from
// indexes (migration 0012), never by loading messages into Go:
//
//   - conversations joined, per day: participants by joined_at
//     (participants_joined, which covers the query);
//   - ratings per day and score, and the comments: ratings by created_at
//     (ratings_created), with their agents from rating_agents' primary key;
//   - first responses: a participation that ended keeps its first reply's
//     time (participants.first_reply_at, stored by leave()); one still open
//     is one lookup of the agent's first reply in messages_agent_replies
//     (conversation, agent, time; notes are not in it); the median by
//     window functions.
//
// So the cost grows with the joins and ratings of the period, not with the
// messages or conversations stored (docs/reports.md has the figures).

// MaxReportSpan is the longest period a report covers.
const MaxReportSpan = 366 * 24 * time.Hour

// maxReportComments bounds the comments listed per agent: the newest.
const maxReportComments = 100

// OperatorsReport is the operator report of a period [From, To).
type OperatorsReport struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Operators are every enabled agent, and every disabled one who has
	// a join or a rating in the period, by name.
	Operators []OperatorStats `json:"operators"`
	// Daily is the chart's series: per UTC day and agent, the joins and
	// ratings of that day; days without either are left out. Ordered by
	// date, then agent id.
	Daily []OperatorDay `json:"daily"`
}

// OperatorStats are one agent's figures over a report's period.
type OperatorStats struct {
	AgentID  int64  `json:"agent_id"`
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"`
	// ConversationsJoined counts the conversations the agent joined in
	// the period (a conversation joined twice counts once). A deleted
	// conversation no longer counts; its rating still does.
	ConversationsJoined int64 `json:"conversations_joined"`
	// Ratings are the ratings given in the period to conversations the
	// agent took part in.
	Ratings RatingStats `json:"ratings"`
	// MedianFirstResponseSeconds is the median of the agent's first
	// response times of the period (see OperatorsReport for the rule);
	// nil when there is none.
	MedianFirstResponseSeconds *float64 `json:"median_first_response_seconds"`
}

// RatingStats sum up ratings.
type RatingStats struct {
	Count int64 `json:"count"`
	// Average score, rounded to two decimals; nil when Count is 0.
	Average *float64 `json:"average"`
	// Distribution counts the scores 1 to 5, in that order.
	Distribution [5]int64 `json:"distribution"`
	// Comments are the ratings that have one, the newest first, at most
	// 100.
	Comments []RatingComment `json:"comments"`
}

// RatingComment is a rating with a comment.
type RatingComment struct {
	ConversationID int64     `json:"conversation_id"`
	Score          int       `json:"score"`
	Comment        string    `json:"comment"`
	At             time.Time `json:"at"`
}

// OperatorDay is one agent's activity on one UTC day.
type OperatorDay struct {
	Date    string `json:"date"` // YYYY-MM-DD, UTC
	AgentID int64  `json:"agent_id"`
	// Joined counts the conversations the agent joined that day.
	Joined int64 `json:"joined"`
	// Ratings counts the ratings given that day that count for the agent.
	Ratings int64 `json:"ratings"`
}

// OperatorsReport computes the operator report of the period [from, to):
// to must be after from (else an *InvalidError naming "to"), at most
// MaxReportSpan later (else one naming "from"). Times are kept to the
// microsecond, in UTC.
//
// First response, the rule: each time an agent joins a conversation
// within the period (a participation, Participant.JoinedAt), the sample
// is the seconds from that join to the first message the same agent then
// wrote in that conversation before leaving it (author agent, their
// agent_id, created at or after the join and, if they left, not after
// LeftAt), by chat or by email, whatever its delivery state. Private
// notes (channel "note") are not responses and are never counted. A join
// without such a reply gives no sample; a reply may come after the
// period's end. An agent's median is that of their samples: the middle
// one, or the mean of the two middle ones. The time the conversation
// waited in Unassigned before the join is not counted: it is nobody's
// response time yet.
func (s *Store) OperatorsReport(ctx context.Context, from, to time.Time) (OperatorsReport, error) {
	from, to = from.UTC().Truncate(time.Microsecond), to.UTC().Truncate(time.Microsecond)
	if !to.After(from) {
		return OperatorsReport{}, invalid("to", "must be after from")
	}
	if to.Sub(from) > MaxReportSpan {
		return OperatorsReport{}, invalid("from", "must be at most 366 days before to")
	}
	var rep OperatorsReport
	db := s.rdb.WithContext(ctx)
	if s.dialect != dialectPostgres {
		rep, err := operatorsReport(db, false, from, to)
		return rep, dbErr(err)
	}
	// One snapshot for every query. PostgreSQL would compile the queries
	// to machine code (JIT) for a second or more, misled by the estimate
	// of the first reply lookups (the plan prices one per join; only the
	// open participations run it): they run in far less.
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SET LOCAL jit = off`).Error; err != nil {
			return err
		}
		var err error
		rep, err = operatorsReport(tx, true, from, to)
		return err
	}, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	return rep, dbErr(err)
}

// operatorsReport is OperatorsReport on db, in the dialect of pg.
func operatorsReport(db *gorm.DB, pg bool, from, to time.Time) (OperatorsReport, error) {
	rep := OperatorsReport{From: from, To: to, Operators: []OperatorStats{}, Daily: []OperatorDay{}}

	var agents []struct {
		ID            int64
		Name          string
		DeactivatedAt *time.Time
	}
	if err := db.Raw(`SELECT id, name, deactivated_at FROM agents ORDER BY name, id`).Scan(&agents).Error; err != nil {
		return rep, err
	}
	stats := map[int64]*OperatorStats{}
	active := map[int64]bool{}
	get := func(id int64) *OperatorStats {
		st := stats[id]
		if st == nil {
			st = &OperatorStats{AgentID: id, Ratings: RatingStats{Comments: []RatingComment{}}}
			stats[id] = st
		}
		active[id] = true
		return st
	}

	// Joins and ratings per day, which the totals add up.
	if err := db.Raw(reportJoins(pg), from, to).Scan(&rep.Daily).Error; err != nil {
		return rep, err
	}
	var scores []struct {
		Date    string
		AgentID int64
		Score   int
		N       int64
	}
	if err := db.Raw(reportScores(pg), from, to).Scan(&scores).Error; err != nil {
		return rep, err
	}
	days := map[OperatorDay]int{} // the index in rep.Daily of a date and agent
	for i, d := range rep.Daily {
		get(d.AgentID).ConversationsJoined += d.Joined
		days[OperatorDay{Date: d.Date, AgentID: d.AgentID}] = i
	}
	for _, sc := range scores {
		if sc.Score < 1 || sc.Score > 5 {
			continue
		}
		st := get(sc.AgentID)
		st.Ratings.Distribution[sc.Score-1] += sc.N
		st.Ratings.Count += sc.N
		key := OperatorDay{Date: sc.Date, AgentID: sc.AgentID}
		i, ok := days[key]
		if !ok {
			i = len(rep.Daily)
			days[key] = i
			rep.Daily = append(rep.Daily, key)
		}
		rep.Daily[i].Ratings += sc.N
	}
	slices.SortFunc(rep.Daily, func(a, b OperatorDay) int {
		return cmp.Or(strings.Compare(a.Date, b.Date), cmp.Compare(a.AgentID, b.AgentID))
	})

	var comments []struct {
		AgentID        int64
		ConversationID int64
		Score          int
		Comment        string
		CreatedAt      time.Time
	}
	if err := db.Raw(reportComments, from, to, maxReportComments).Scan(&comments).Error; err != nil {
		return rep, err
	}
	for _, c := range comments {
		st := get(c.AgentID)
		st.Ratings.Comments = append(st.Ratings.Comments, RatingComment{ConversationID: c.ConversationID,
			Score: c.Score, Comment: c.Comment, At: c.CreatedAt.UTC()})
	}

	var medians []struct {
		AgentID int64
		Median  float64
	}
	if err := db.Raw(reportMedians(pg), from, to).Scan(&medians).Error; err != nil {
		return rep, err
	}
	for _, m := range medians {
		v := math.Round(math.Max(m.Median, 0)*10) / 10
		get(m.AgentID).MedianFirstResponseSeconds = &v
	}

	for _, a := range agents {
		if a.DeactivatedAt != nil && !active[a.ID] {
			continue
		}
		st := get(a.ID)
		st.Name, st.Disabled = a.Name, a.DeactivatedAt != nil
		if n := st.Ratings.Count; n > 0 {
			sum := int64(0)
			for i, c := range st.Ratings.Distribution {
				sum += int64(i+1) * c
			}
			avg := math.Round(float64(sum)/float64(n)*100) / 100
			st.Ratings.Average = &avg
		}
		rep.Operators = append(rep.Operators, *st)
	}
	return rep, nil
}

// The report's queries; each reads the period [from, to) (its first two
// parameters) through an index of migration 0012 (TestOperatorsReportPlan
// checks the plans). Days are UTC days (reportDay).

// reportDay is the UTC date, YYYY-MM-DD, of a time column.
func reportDay(pg bool, col string) string {
	if pg {
		return "to_char(" + col + " AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
	}
	return "date(" + col + ")"
}

// reportJoins is the query of each agent's conversations joined per day
// (an OperatorDay's date, agent_id and joined): a conversation counts on
// the day the agent first joined it in the period, once.
func reportJoins(pg bool) string {
	return `SELECT ` + reportDay(pg, "first_join") + ` AS date, agent_id, COUNT(*) AS joined FROM (
			SELECT agent_id, conversation_id, MIN(joined_at) AS first_join FROM participants
			WHERE joined_at >= ? AND joined_at < ? GROUP BY agent_id, conversation_id
		) j GROUP BY 1, agent_id`
}

// reportScores is the query of each agent's ratings per day and score.
func reportScores(pg bool) string {
	return `SELECT ` + reportDay(pg, "r.created_at") + ` AS date, ra.agent_id, r.score, COUNT(*) AS n
		FROM ratings r JOIN rating_agents ra ON ra.rating_id = r.id
		WHERE r.created_at >= ? AND r.created_at < ? GROUP BY 1, ra.agent_id, r.score`
}

// reportComments is the query of each agent's newest comments (the third
// parameter is how many).
const reportComments = `SELECT agent_id, conversation_id, score, comment, created_at FROM (
		SELECT ra.agent_id, r.conversation_id, r.score, r.comment, r.created_at, r.id,
			ROW_NUMBER() OVER (PARTITION BY ra.agent_id ORDER BY r.created_at DESC, r.id DESC) AS rn
		FROM ratings r JOIN rating_agents ra ON ra.rating_id = r.id
		WHERE r.created_at >= ? AND r.created_at < ? AND r.comment <> ''
	) c WHERE rn <= ? ORDER BY agent_id, created_at DESC, id DESC`

// firstReply is the subquery of the first reply of the participation p
// (the alias or table name of a participants row) by the rule of
// OperatorsReport, at most at until (an SQL expression) if it is not
// empty. It reads messages_agent_replies, whose condition (author agent,
// agent_id not null, channel not note) it repeats word for word so that
// both databases use that partial index. leave() stores its value in participants.first_reply_at
// when the participation ends, after which it cannot change.
func firstReply(p, until string) string {
	q := `SELECT MIN(m.created_at) FROM messages m
		WHERE m.conversation_id = ` + p + `.conversation_id AND m.agent_id = ` + p + `.agent_id
			AND m.author = 'agent' AND m.agent_id IS NOT NULL AND m.channel <> 'note' AND m.created_at >= ` + p + `.joined_at`
	if until != "" {
		q += ` AND m.created_at <= ` + until
	}
	return q
}

// reportMedians is the query of each agent's median first response time
// in seconds over the joins of a period, by the rule of OperatorsReport:
// first_reply_at of the participations that ended (leave() stored it),
// one lookup of firstReply for those still open. The CTE is MATERIALIZED
// so that SQLite runs that lookup once per join, not once per use of its
// result. The median is the mean of the middle one or two samples by row
// number, which both databases compute the same way.
func reportMedians(pg bool) string {
	secs := `(julianday(first_at) - julianday(joined_at)) * 86400.0`
	if pg {
		secs = `EXTRACT(EPOCH FROM (first_at - joined_at))::float8`
	}
	return `WITH firsts AS MATERIALIZED (
			SELECT p.agent_id, p.joined_at,
				CASE WHEN p.left_at IS NULL THEN (` + firstReply("p", "") + `) ELSE p.first_reply_at END AS first_at
			FROM participants p WHERE p.joined_at >= ? AND p.joined_at < ?
		), samples AS (
			SELECT agent_id, ` + secs + ` AS secs FROM firsts WHERE first_at IS NOT NULL
		), ranked AS (
			SELECT agent_id, secs, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY secs) AS rn,
				COUNT(*) OVER (PARTITION BY agent_id) AS n
			FROM samples
		)
		SELECT agent_id, AVG(secs) AS median FROM ranked WHERE rn IN ((n + 1) / 2, (n + 2) / 2) GROUP BY agent_id`
}
