// receiver.cjs is the Node receiver of docs/webhooks.md ("Verifying a
// delivery"), which TestStandardWebhooksNode runs: it listens on
// 127.0.0.1 at a port of its choosing, which it prints, and answers a
// delivery signed with WEBHOOK_SECRET 204, anything else 400. The
// standardwebhooks package comes from NODE_PATH (scripts/test-deps.sh).
const http = require("node:http");
const { Webhook } = require("standardwebhooks");

const wh = new Webhook(process.env.WEBHOOK_SECRET); // "whsec_..."

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    // The body exactly as sent: parsing and serializing it again breaks the signature.
    const payload = Buffer.concat(chunks).toString("utf8");
    let event;
    try {
      // Checks the signature, and that webhook-timestamp is within 5 minutes.
      event = wh.verify(payload, req.headers);
    } catch (err) {
      res.writeHead(400).end(err.message);
      return;
    }
    // event is the parsed JSON; req.headers["webhook-id"] identifies it across retries.
    console.error(`verified ${req.headers["webhook-id"]}: ${event.type}`);
    res.writeHead(204).end();
  });
});

server.listen(0, "127.0.0.1", () => console.log(server.address().port));
