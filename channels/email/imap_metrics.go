package email

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus metrics of the IMAP ingest, one series per
// mailbox (its config name). Register Collectors() with the server's
// registry; one Metrics serves every Ingester of the process.
type Metrics struct {
	// Imported counts mails handed to the Sink successfully, too large
	// ones included: microchat_email_imported_total{mailbox}.
	Imported *prometheus.CounterVec
	// Remaining is how many mails the current sync still has to fetch, the
	// progress of a big first sync: microchat_email_sync_remaining{mailbox}.
	Remaining *prometheus.GaugeVec
	// Connected is 1 while the mailbox's IMAP connection is logged in with
	// its folder selected, else 0: microchat_email_connected{mailbox}.
	Connected *prometheus.GaugeVec
	// Errors counts sessions ended by a failure, by Problem kind
	// (unreachable, tls, login, folder, protocol, store):
	// microchat_email_errors_total{mailbox,kind}.
	Errors *prometheus.CounterVec
}

// NewMetrics returns unregistered metrics.
func NewMetrics() *Metrics {
	return &Metrics{
		Imported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microchat_email_imported_total",
			Help: "Mails fetched over IMAP and stored or quarantined, by mailbox.",
		}, []string{"mailbox"}),
		Remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "microchat_email_sync_remaining",
			Help: "Mails the current IMAP sync of a mailbox has still to fetch (a first sync's progress).",
		}, []string{"mailbox"}),
		Connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "microchat_email_connected",
			Help: "1 while the mailbox's IMAP connection is logged in and its folder selected.",
		}, []string{"mailbox"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "microchat_email_errors_total",
			Help: "IMAP sessions ended by a failure, by mailbox and kind (unreachable, tls, login, folder, protocol, store).",
		}, []string{"mailbox", "kind"}),
	}
}

// Collectors returns the metrics, for prometheus.Registry.MustRegister.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Imported, m.Remaining, m.Connected, m.Errors}
}
