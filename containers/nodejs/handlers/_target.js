// What every sample calls: the service behind TARGET_URL, by its DNS name,
// over node:http. Read on every call, not cached: the URL itself is never the fault.
"use strict";
const http = require("node:http");

const DEFAULT_URL = "http://svc.internal:8080/";

function targetUrl() {
  return process.env.TARGET_URL || DEFAULT_URL;
}

// GET url and resolve with the parsed JSON body; non-2xx statuses reject.
// options go to http.get as is (agent, timeout, lookup, headers).
function getJson(url, options = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, options, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        if (res.statusCode < 200 || res.statusCode > 299) {
          reject(new Error(`service answered ${res.statusCode}`));
          return;
        }
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on("error", reject);
    if (options.timeout) {
      // http's timeout only emits 'timeout'; without destroy the request would wait on.
      req.on("timeout", () => {
        const err = new Error(`no answer within ${options.timeout} ms (ETIMEDOUT)`);
        err.code = "ETIMEDOUT";
        req.destroy(err);
      });
    }
  });
}

module.exports = { targetUrl, getJson };
