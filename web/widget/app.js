// The widget's wiring. w holds its parts, each a module that keeps its
// own state: the shell (shell.js: launcher, panel and views), the socket
// (socket.js) and the order of events (ordering.js), the outbox of
// messages not yet acknowledged (outbox.js) and its rules (sending.js),
// uploads and attachments (uploads.js), page views (pageviews.js), the
// rating flow (survey.js), the agents (agents.js), read receipts
// (reads.js), the conversation (conversation.js) and the page's
// listeners (microchat.js). What happens between the parts are functions
// of w: loading the conversation (state.js), the socket's frames
// (events.js), Start Chat and boot (session.js).
import { initStore, getToken } from "./store.js";
import { createApi } from "./api.js";
import { createSocket } from "./socket.js";
import { createOrdering } from "./ordering.js";
import { createShell } from "./shell.js";
import { createOutbox } from "./outbox.js";
import { createSending } from "./sending.js";
import { createUploads } from "./uploads.js";
import { createPageViews } from "./pageviews.js";
import { createSurvey } from "./survey.js";
import { createAgents } from "./agents.js";
import { createReads } from "./reads.js";
import { createConversation } from "./conversation.js";
import { createListeners, microchatApi } from "./microchat.js";
import { loadState, loadOlder, expired } from "./state.js";
import { onFrame } from "./events.js";
import { startChat, boot } from "./session.js";

// createApp builds the widget in root (the shadow root) for cfg
// (config.js) and returns boot, which starts it, and the page's API.
export function createApp(cfg, root) {
	initStore(cfg.origin);
	const w = { api: createApi(cfg.origin, getToken), listeners: createListeners() };
	const send = (f) => w.socket.send(f);
	const render = () => w.conversation.render();
	w.shell = createShell(cfg, root, {
		start: (v) => startChat(w, v),
		send: (text) => w.sending.send(text),
		files: (files) => w.uploads.send(files),
		typing: (t) => send({ type: "typing", typing: t }),
		older: () => loadOlder(w),
		fetchFile: (id) => w.uploads.fetch(id),
		opened() {
			w.reads.markRead();
			render();
			w.listeners.emit("open");
		},
		closed() {
			render();
			w.listeners.emit("close");
		},
	});
	w.order = createOrdering(() => loadState(w, true), { gaps: true });
	w.socket = createSocket(cfg.origin.replace(/^http/, "ws") + "/api/v1/widget/ws", {
		auth: () => ({ type: "auth", token: getToken(), ...w.conversation.resume() }),
		onFrame: (f) => onFrame(w, f),
		onStatus: (s) => w.shell.panel.connection(s === "reconnecting" ? "Reconnecting..." : ""),
		onUnauthorized: () => expired(w),
		onDropped: (code, f) => w.sending.dropped(code, f),
	});
	w.outbox = createOutbox(send, w.shell);
	w.sending = createSending(w.outbox, w.shell.panel);
	w.uploads = createUploads(w.api, w.shell, (p) => w.outbox.queue(p), () => w.conversation.conv !== null);
	w.pages = createPageViews(send);
	w.survey = createSurvey(w.api, w.shell.msgs);
	w.agents = createAgents(render);
	w.reads = createReads(send, w.shell.reading, render);
	w.conversation = createConversation(w);
	return { boot: () => boot(w), api: microchatApi(w.shell, w.listeners) };
}
