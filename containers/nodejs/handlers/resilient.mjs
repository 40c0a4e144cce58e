// What survives a late or swapped ENI: nothing network-related at module load,
// a per-attempt timeout bounded by context.getRemainingTimeInMillis(), retries
// with backoff on the errors of a network that is not there yet, no failure
// kept between invocations, and a fresh socket after any network failure (the
// pooled agent is destroyed, so a connection from before a swap is never reused).
import http from "node:http";
import target from "./_target.js";

const ATTEMPT_TIMEOUT_MS = 1000;
const SAFETY_MARGIN_MS = 300;
const RETRYABLE = new Set(["EAI_AGAIN", "ENOTFOUND", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH",
  "ECONNRESET", "EPIPE", "ETIMEDOUT", "EADDRNOTAVAIL", "ECONNABORTED", "UND_ERR_CONNECT_TIMEOUT"]);

let agent = null;

function pooledAgent() {
  agent ??= new http.Agent({ keepAlive: true, timeout: 20000 });
  return agent;
}

function dropAgent() {
  agent?.destroy();
  agent = null;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = async (event, context) => {
  let delay = 50;
  const errors = [];
  for (let attempt = 1; ; attempt++) {
    const budget = context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS;
    const timeout = Math.max(100, Math.min(ATTEMPT_TIMEOUT_MS, budget));
    try {
      const got = await target.getJson(target.targetUrl(), { agent: pooledAgent(), timeout });
      return { handler: "resilient", attempts: attempt, errors, got };
    } catch (err) {
      if (!RETRYABLE.has(err.code) && err.message !== "socket hang up") throw err;
      dropAgent();
      errors.push(`attempt ${attempt}: ${err.code || err.message}`);
      console.error(`resilient: attempt ${attempt} failed: ${err.message}`);
      if (context.getRemainingTimeInMillis() - SAFETY_MARGIN_MS <= delay) throw err;
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  }
};
