// Package clustertest runs Microchat as a cluster of real processes for
// the scale-out tests of issue 14: the `microchat` binary, built once per
// test binary ([Binary]), started two or three times as `microchat serve`
// on loopback ports over one fresh PostgreSQL database
// (inboxtest.SharedPostgres, [Start]), each node with its own node_id. A test kills a node with
// SIGKILL ([Node.Kill]), stops it with SIGTERM ([Node.Stop]) or starts it
// again on the same address ([Node.Start]), and talks to the nodes as
// the dashboard and the widget do: logins and API calls over HTTP
// ([Agent]), the agents' and the visitors' WebSockets ([Socket]).
//
// Each node's output is kept and written to the test's log when the test
// fails. Nothing here sleeps to let time pass: helpers wait for a
// condition with a deadline, and fail the test saying what did not
// happen.
//
// The package needs Linux (a node dies with the test process, and
// [Cluster.Owner] finds which node holds a TCP connection through
// /proc) and a PostgreSQL server named by MICROCHAT_TEST_DATABASE_URL
// (scripts/test.sh starts one).
package clustertest
