// Fleet sample, mitigation `retry`: each message's call is retried inside the
// handler (as the `resilient` sample does): a per-attempt timeout bounded by the
// remaining time, backoff, a fresh agent after a network failure. It costs
// latency while the ENI is late, and a call retried after a lost answer is
// recorded twice (the service saw the first).
import http from "node:http";
import fleet from "./_fleet_events.js";

const ATTEMPT_TIMEOUT_MS = 2000;
const SAFETY_MARGIN_MS = 300;
const RETRYABLE = new Set(["EAI_AGAIN", "ENOTFOUND", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH",
  "ECONNRESET", "EPIPE", "ETIMEDOUT", "EADDRNOTAVAIL", "ECONNABORTED"]);

let agent = null;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function get(url, context) {
  let delay = 50;
  for (let attempt = 1; ; attempt++) {
    const budget = context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
    try {
      agent ??= new http.Agent({ keepAlive: true });
      await fleet.getJson(url, { agent, timeout: Math.max(100, Math.min(ATTEMPT_TIMEOUT_MS, budget)) });
      return attempt;
    } catch (err) {
      if (!RETRYABLE.has(err.code) && err.message !== "socket hang up") throw err;
      agent?.destroy(); // never reuse a pool that failed, never remember the failure
      agent = null;
      console.error(`fleet_retry: attempt ${attempt} failed: ${err.code || err.message}`);
      if (context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS <= delay) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }
}

export const handler = async (event, context) => {
  const attempts = [];
  for (const [, id] of fleet.messages(event)) attempts.push(await get(fleet.recordUrl(id), context));
  return { handler: "fleet_retry", attempts };
};
