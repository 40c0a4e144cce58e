// Fleet sample, no mitigation: one keep-alive agent made at module load, one call
// per message, no timeout, no retry. A cold start that meets a late ENI fails its
// first invocations (the name does not resolve yet: EAI_AGAIN); a batch fails whole.
import http from "node:http";
import fleet from "./_fleet_events.js";

const agent = new http.Agent({ keepAlive: true });

export const handler = async (event) => {
  const recorded = [];
  for (const [, id] of fleet.messages(event)) {
    await fleet.getJson(fleet.recordUrl(id), { agent });
    recorded.push(id);
  }
  return { handler: "fleet_naive", recorded };
};
