// A callback handler on Node's default http agent, no timeout on the call. Since
// Node 19 http.globalAgent keeps connections alive, so the socket of one
// invocation is pooled and reused by the next, across the freeze. Fine after a
// late attach (each new socket looks the name up again), but a pooled socket
// that died silently (an ENI swap took its source address) is written to and
// waited on. The Node analogue of python naive_session and dotnet static_httpclient.
"use strict";
const target = require("./_target.js");

exports.handler = (event, context, callback) => {
  target.getJson(target.targetUrl())
    .then((got) => callback(null, { handler: "keepalive_agent", got }))
    .catch((err) => callback(err));
};
