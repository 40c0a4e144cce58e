// Fleet sample, mitigation `wait_for_network`: the init (this module's top-level
// await) waits until the service's name resolves, bounded by Lambda's 10 s init
// limit less a margin, then behaves as the naive sample. It costs the cold
// start's latency: every event waiting on that environment waits for the ENI too.
import http from "node:http";
import { lookup } from "node:dns/promises";
import fleet from "./_fleet_events.js";

const INIT_LIMIT_MS = Number(process.env.FLEET_WAIT_LIMIT_S || "9") * 1000;

async function waitForNetwork() {
  const { hostname } = new URL(fleet.targetUrl());
  const deadline = Date.now() + INIT_LIMIT_MS;
  let waited = 0;
  for (;;) {
    try {
      await lookup(hostname, { family: 4 });
      break;
    } catch {
      if (Date.now() >= deadline) {
        console.error("fleet_wait: the network never came; init goes on");
        break;
      }
      waited += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  if (waited) console.error(`fleet_wait: waited ${waited} times for ${hostname}`);
}

await waitForNetwork();
const agent = new http.Agent({ keepAlive: true });

export const handler = async (event) => {
  const recorded = [];
  for (const [, id] of fleet.messages(event)) {
    await fleet.getJson(fleet.recordUrl(id), { agent });
    recorded.push(id);
  }
  return { handler: "fleet_wait", recorded };
};
