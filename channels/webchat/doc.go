// Package webchat is the web chat channel: the visitors' WebSocket at
// /api/v1/widget/ws (docs/widget-protocol.md), and the facts and rate
// limits that the widget's HTTP API shares with it. Its Channel is the
// inbox's chat channel (inbox.Channel): a chat reply reaches a contact
// while they are online, and needs no delivery of its own, as the
// visitors' sockets follow their conversation's events.
//
// The rules:
//
//   - A socket costs as little memory as can be: tens of thousands of idle
//     visitors are the normal load. gws with a 512-byte read buffer, no
//     goroutine of its own but gws's read loop, no timer once authenticated
//     (liveness is a read deadline: the widget pings every 25 s), a small
//     per-connection struct that is also gws's session storage. Run the
//     server with GODEBUG=adaptivestackstart=0: otherwise, while deep
//     request goroutines are about, the runtime starts new goroutines
//     (read loops) with 4 KB stacks instead of 2 KB, and they keep them.
//   - The read loop does nothing but hand each frame to a dispatcher (a
//     few per node), which renews the read deadline and queues the frame
//     as a job on the socket's own queue. Everything else a connection
//     does, its database work and every write, runs as such a job: a
//     socket with jobs waits in the node's run queue for one of a fixed
//     set of workers, which runs its jobs one at a time in order. Jobs
//     own the connection's state; nothing else writes to the socket but
//     a close. So deep stacks live on few goroutines: whatever the read
//     loop calls grows its stack for as long as the socket lives.
//   - Events reach a socket through a callback subscription to the
//     conversation (inbox.Hub.SubscribeFunc) that only queues a job. A
//     socket with more than maxQueuedEvents events waiting is dropped: the
//     widget reconnects and resumes from its last sequence number. A client
//     with maxQueuedFrames frames waiting is not read until one of them is
//     handled: a visitor who sends faster than the node stores (past its
//     saturation, or while the database is slow) is slowed down by TCP,
//     never closed; the widget keeps each message until its ack.
//   - Each socket counts its contact as connected in the node's presence
//     tracker (package presence, given in Options), which the agents'
//     WebSocket reports to as well: a contact is online while one of their
//     sockets is open on this node, and for offline_after after the last
//     one closed (spec rule 6).
package webchat
