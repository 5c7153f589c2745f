// conn.js: the agents' socket (docs/protocol.md, "The agents'
// WebSocket"), through the socket module the widget uses too
// (/static/shared/socket.js: backoff with jitter, 4401, 4429) and its
// per-conversation ordering (/static/shared/ordering.js).
//
// It connects with ?resume=1, so that no event comes before the client's
// resume; on each hello it sends `resume` with the cursor of every
// conversation the client holds, then a `ping`: the events before the
// `pong` are the catch-up of what happened while it was away (emitted
// {ev, live: false}: no notifications), those after it live. Every event
// reaches the bus once, per conversation in seq order. The list reloads
// itself over HTTP on each "hello".
import { createSocket } from "/static/shared/socket.js";
import { createOrdering } from "/static/shared/ordering.js";

// createConn returns the connection for the bus: start(), stop(),
// send(frame) -> bool, status(), hold(id, seq), forget(id), and
// catchingUp().
export function createConn(bus) {
  let status = "connecting";
  let catchingUp = false;
  const order = createOrdering((id) => bus.emit("resync", id));
  const url = location.origin.replace(/^http/, "ws") + "/api/v1/ws?resume=1";
  const socket = createSocket(url, {
    onFrame: frame,
    onStatus: (s) => {
      status = s;
      bus.emit("status", s);
    },
    onUnauthorized: () => bus.emit("session-ended"),
  });

  function deliver(evs, live) {
    for (const ev of evs) {
      if (ev.type === "conversation_deleted") order.forget(ev.conversation_id);
      bus.emit("event", { ev, live });
    }
  }

  function frame(f) {
    switch (f.type) {
      case "hello":
        catchingUp = true;
        socket.send({ type: "resume", cursors: order.cursors() });
        socket.send({ type: "ping" });
        bus.emit("hello", f);
        break;
      case "pong":
        // The first pong after the resume: the catch-up is over.
        if (catchingUp) {
          catchingUp = false;
          bus.emit("conn:live");
        }
        break;
      case "event":
        deliver(order.take(f.event), !catchingUp);
        break;
      case "resync":
        if (f.conversation_id) {
          order.resync(f.conversation_id);
          bus.emit("resync", f.conversation_id);
        } else {
          order.clear();
          bus.emit("resync", 0);
        }
        break;
      case "typing":
        bus.emit("typing", f);
        break;
      case "contact_presence":
        bus.emit("contact_presence", f);
        break;
      case "agent_presence":
        bus.emit("agent_presence", { agent_id: f.agent_id, presence: f.presence, name: f.name });
        break;
      case "ack":
        bus.emit("ack", f);
        break;
      case "error":
        if (f.client_id) bus.emit("reply-error", f);
        else console.warn("microchat socket:", f.error);
        break;
    }
  }

  return {
    start: () => socket.connect(),
    // stop closes the socket until start (logged out, session ended).
    stop() {
      socket.close();
      catchingUp = false;
      status = "connecting";
      bus.emit("status", status);
    },
    send: (f) => socket.send(f),
    status: () => status,
    catchingUp: () => catchingUp,
    // hold says the client loaded conversation id over HTTP up to seq:
    // the resume's cursor for a conversation the socket has not spoken
    // of, and the end of a resync (the events that waited for it follow,
    // live). Over an open socket the stream stays the authority: events
    // after what a view loaded still reach it.
    hold(id, seq) {
      if (order.known(id) === undefined || order.waiting(id)) deliver(order.reset(id, seq), !catchingUp);
    },
    forget: (id) => order.forget(id),
  };
}
