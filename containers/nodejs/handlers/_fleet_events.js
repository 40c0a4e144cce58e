// What the fleet samples share (the Node twin of python's _fleet_events.py): the
// message ids an event carries, whether it came from a synchronous invoke
// ({"id", "sent_ms"}) or from SQS (Records, each body that JSON), and the side
// effect the fleet's account is checked against: GET <service>/record/<id>.
"use strict";
const target = require("./_target.js");

// [[SQS messageId or null, message id]] of the event, in order.
function messages(event) {
  if (event && Array.isArray(event.Records)) {
    return event.Records.map((r) => [r.messageId, JSON.parse(r.body).id]);
  }
  return [[null, event.id]];
}

function recordUrl(id) {
  return `${target.targetUrl().replace(/\/+$/, "")}/record/${id}`;
}

module.exports = { messages, recordUrl, getJson: target.getJson, targetUrl: target.targetUrl };
