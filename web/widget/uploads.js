// Files in the conversation: those the visitor sends (picked, dropped or
// pasted: composer.js), each uploaded (POST /uploads) and then sent as a
// message of its own through the outbox; and those shown in it, fetched
// with the visitor token (never in a URL) as blob URLs, once each.
import { randomId, formatSize } from "./dom.js";
import { wait, sentence } from "./text.js";

// uploadError says why the file called name could not be sent (e: the
// ApiError of its upload).
function uploadError(name, e) {
	const q = "\u201c" + name + "\u201d";
	if (e.status === 413) return q + " is too large to send. " + sentence(e.message);
	if (e.status === 415) return q + " cannot be sent. " + sentence(e.message);
	if (e.status === 429) return wait(e.retryAfter);
	if (e.status === 0) return q + " could not be sent: the upload failed. The file may be too large, or the connection dropped.";
	return q + " could not be sent. " + sentence(e.message);
}

// createUploads returns the files' part. queue(p) sends a message (the
// outbox), active() says whether there is a conversation to send it to;
// uploads show in msgs, errors in panel.
export function createUploads(api, { msgs, panel }, queue, active) {
	const blobs = new Map(); // attachment id -> promise of a blob URL
	let maxUpload = 0; // bytes; 0 when the server does not say
	return {
		// send uploads files, one after the other, and sends each.
		async send(files) {
			if (!active()) return;
			for (const file of files) {
				const name = file.name || "image.png";
				if (maxUpload && file.size > maxUpload) {
					panel.error("\u201c" + name + "\u201d is too large (" + formatSize(file.size) + "): files up to " + formatSize(maxUpload) + " can be sent.");
					continue;
				}
				const tmp = { client_id: randomId(), text: "", attachments: [{ name }] };
				msgs.addPending(tmp, "Uploading...");
				try {
					const r = await api.upload(file);
					msgs.removePending(tmp.client_id);
					queue({ client_id: randomId(), text: "", attachments: [r.attachment] });
				} catch (e) {
					msgs.removePending(tmp.client_id);
					panel.error(uploadError(name, e));
				}
			}
		},
		// fetch resolves to a blob URL of attachment id.
		fetch(id) {
			if (!blobs.has(id)) {
				const p = api.attachment(id).then((b) => URL.createObjectURL(b));
				p.catch(() => blobs.delete(id));
				blobs.set(id, p);
			}
			return blobs.get(id);
		},
		setLimit(n) {
			maxUpload = n;
		},
	};
}
