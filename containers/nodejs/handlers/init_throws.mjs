// Calls the service at module load (top-level await), with no try: a late ENI
// fails the init. aws-lambda-ric posts the error to /init/error and exits, so
// the platform starts the runtime again: it recovers at the cost of a re-init.
// The Node analogue of python naive_crash and dotnet ctor_throws.
import target from "./_target.js";

const warmup = await target.getJson(target.targetUrl());

export const handler = async () => {
  const got = await target.getJson(target.targetUrl());
  return { handler: "init_throws", warmup, got };
};
