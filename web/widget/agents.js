// The agents on the other side, for the status line and the messages:
// those in the conversation now (from /state, hello, joined and left
// events), their presence (online, idle) and whether they are typing; and
// every agent's name, also of those who left, for their messages.
//
// Names are the current ones (/state's authors and agents, hello,
// presence, which also comes when an agent renames themselves); the name
// an agent joined with (joined events) is used only for an agent with no
// current one.

// createAgents returns the agents; onChange is called when one starts or
// stops typing.
export function createAgents(onChange) {
	const names = new Map(); // agent id -> name
	const joinNames = new Map(); // agent id -> the name they joined with
	const typingTimers = new Map();
	let list = []; // {id, name, presence, responsible, typing}

	const find = (id) => list.find((x) => x.id === id);

	// typing shows or drops an agent's typing indicator: a typing true
	// lasts 10 s unless renewed (docs/widget-protocol.md), so that a lost
	// "stopped typing" frame does not leave it on.
	function typing(id, t) {
		const a = find(id);
		if (!a) return;
		a.typing = t;
		clearTimeout(typingTimers.get(id));
		if (t) typingTimers.set(id, setTimeout(() => typing(id, false), 10000));
		onChange();
	}

	return {
		typing,
		// set takes the agents in the conversation now, from /state or hello.
		set(agents) {
			list = (agents || []).map((a) => ({ ...a, typing: false }));
			for (const a of list) names.set(a.id, a.name);
		},
		// authors takes /state's authors of the messages: {id, name}.
		authors(authors) {
			for (const a of authors || []) names.set(a.id, a.name);
		},
		joinName(id, name) {
			joinNames.set(id, name);
		},
		// joined takes a joined event's data, d.
		joined(d) {
			joinNames.set(d.agent_id, d.agent_name);
			if (!find(d.agent_id)) list.push({ id: d.agent_id, name: d.agent_name, responsible: d.responsible, presence: "online", typing: false });
		},
		left(id) {
			list = list.filter((a) => a.id !== id);
		},
		clear() {
			list = [];
		},
		// wrote says agent id's message arrived: they stopped typing it.
		wrote(id) {
			const a = find(id);
			if (a) a.typing = false;
		},
		// presence takes a presence frame, f: {agent_id, presence, name?},
		// also sent when an agent renames themselves: the name is theirs now.
		presence(f) {
			const a = find(f.agent_id);
			if (a) a.presence = f.presence;
			if (a && f.name) a.name = f.name;
			if (f.name && (a || names.has(f.agent_id) || joinNames.has(f.agent_id))) names.set(f.agent_id, f.name);
		},
		// nameOf is an agent's name for their messages: the current one,
		// else the one they joined with.
		nameOf: (id) => names.get(id) || joinNames.get(id) || "Support",
		// shown is the agent the status line shows: the responsible one,
		// else the first; undefined when none is in the conversation.
		shown: () => list.find((x) => x.responsible) || list[0],
		typingNames: () => list.filter((x) => x.typing).map((x) => x.name),
	};
}
