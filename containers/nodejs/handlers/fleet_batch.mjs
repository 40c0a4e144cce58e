// Fleet sample, mitigation `queue`: an SQS batch handler that reports partial
// failures (ReportBatchItemFailures): each record's call is tried once; a record
// that failed goes back to the queue and is retried later, usually on another
// environment, and dead-lettered after max_receive_count. A synchronous event
// fails as the naive sample does.
import http from "node:http";
import fleet from "./_fleet_events.js";

let agent = new http.Agent({ keepAlive: true });

export const handler = async (event) => {
  const batchItemFailures = [];
  for (const [messageId, id] of fleet.messages(event)) {
    try {
      await fleet.getJson(fleet.recordUrl(id), { agent, timeout: 2000 });
    } catch (err) {
      if (messageId === null) throw err;
      agent.destroy(); // the next record gets a fresh connection
      agent = new http.Agent({ keepAlive: true });
      console.error(`fleet_batch: ${id} failed: ${err.code || err.message}`);
      batchItemFailures.push({ itemIdentifier: messageId });
    }
  }
  return { batchItemFailures };
};
