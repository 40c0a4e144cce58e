// An "orders" Lambda handler in Node.js (an ES module), written the way that
// survives a late or swapped ENI:
// - nothing touches the network at module load (a rejection there fails the
//   init; a promise kept from a failed lookup keeps failing forever);
// - each attempt has a timeout taken from context.getRemainingTimeInMillis();
// - errors of a network that is not there yet are retried with backoff, and the
//   keep-alive agent is thrown away after one, so a socket opened over a
//   swapped-out ENI is never written to again.
//
// enirace runs it with AWS's aws-lambda-ric, as Lambda's nodejs runtime does.
import http from "node:http";

const ATTEMPT_MS = 1000;
const MARGIN_MS = 250;
let agent = new http.Agent({ keepAlive: true });

function get(url, timeout) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, timeout }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { body += c; });
      res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(Object.assign(new Error("attempt timed out"), { code: "ETIMEDOUT" })));
    req.on("error", reject);
  });
}

export const handler = async (event, context) => {
  const url = process.env.ORDERS_API_URL ?? "http://orders.internal/";
  let backoff = 50;
  for (let attempt = 1; ; attempt++) {
    const budget = Math.min(ATTEMPT_MS, context.getRemainingTimeInMillis() - MARGIN_MS);
    if (budget <= 0) throw new Error("orders: no time left for another attempt");
    try {
      return { attempts: attempt, orders: JSON.parse(await get(url, budget)) };
    } catch (err) {
      if (!err.code && err.message !== "socket hang up") throw err;  // not the network's fault
      agent.destroy();
      agent = new http.Agent({ keepAlive: true });
      console.error(`orders: attempt ${attempt} failed: ${err.message}`);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 400);
    }
  }
};
