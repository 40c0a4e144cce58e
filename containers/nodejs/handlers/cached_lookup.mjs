// Starts the service's lookup once, at module load, and keeps the promise. A
// promise settles once: after a failed lookup every invocation awaits the same
// rejection (getaddrinfo EAI_AGAIN) for the life of the environment, even once
// the ENI is up. The init succeeds either way, so nothing re-runs it.
// The Node analogue of python naive_cached and dotnet lazy_cached.
import { lookup } from "node:dns/promises";
import target from "./_target.js";

const url = new URL(target.targetUrl());
const serviceAddress = lookup(url.hostname, { family: 4 });
// Handled here only so Node does not end the process on an unhandled rejection;
// the rejection itself stays in serviceAddress.
serviceAddress.catch(() => {});

export const handler = async () => {
  const { address } = await serviceAddress;
  const got = await target.getJson(`http://${address}:${url.port || 80}${url.pathname}`,
    { headers: { Host: url.host }, timeout: 2000 });
  return { handler: "cached_lookup", service_ip: address, got };
};
