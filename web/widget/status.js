// The strip under the header that says who is on the other side: while no
// agent is in the conversation, the guide's "Waiting for support staff..."
// and "Status: Connecting..."; then the responsible agent's name and
// presence (online, typing, idle); and that the chat ended.
import { h } from "./dom.js";

export function createStatus() {
	const el = h("div", { class: "status" });
	let shown = "";
	return {
		el,
		// render takes {mode: "waiting" | "agent" | "ended" | "none",
		// agent: {name, presence, typing}}.
		render({ mode, agent }) {
			const key = mode + (agent ? agent.name + agent.presence + agent.typing : "");
			if (key === shown) return;
			shown = key;
			el.className = "status " + mode;
			if (mode === "waiting") {
				el.replaceChildren(
					h("span", { class: "spinner", "aria-hidden": "true" }),
					h("div", { role: "status" }, h("p", { class: "s1", text: "Waiting for support staff..." }), h("p", { class: "s2", text: "Status: Connecting..." })),
				);
			} else if (mode === "agent") {
				const presence = agent.typing ? "typing" : agent.presence || "online";
				el.replaceChildren(
					h("span", { class: "avatar", "aria-hidden": "true", text: (agent.name || "?").trim().charAt(0).toUpperCase() }),
					h(
						"div",
						{},
						h("p", { class: "s1 agent-name", dir: "auto", text: agent.name }),
						h("p", { class: "s2 presence " + presence }, h("span", { class: "dot", "aria-hidden": "true" }), h("span", { class: "sr", text: "Status: " }), presence),
					),
				);
			} else if (mode === "ended") {
				el.replaceChildren(h("div", {}, h("p", { class: "s1", text: "This chat has ended" }), h("p", { class: "s2", text: "Write again below to reopen it." })));
			} else {
				el.replaceChildren();
			}
		},
	};
}
