// The Node peer of the /readyz benchmark: a node:http server with @godaddy/terminus.
//
//   PORT=18090 FAST_URL=http://127.0.0.1:18081 [HANG_URL=http://127.0.0.1:18082] node server.js
//
// Terminus runs the health check function on every request to /readyz, which is how it is
// meant to be used: the function below calls the 20 dependencies over HTTP (keep-alive
// agent, concurrently, 2500 ms timeout each, as in runward.toml) and fails when one fails.
// Without HANG_URL the 20 checks go to FAST_URL; with it, the 20th goes to HANG_URL.
'use strict';

const http = require('node:http');
const { createTerminus, HealthCheckError } = require('@godaddy/terminus');

const port = Number(process.env.PORT || 18090);
const fastUrl = process.env.FAST_URL || 'http://127.0.0.1:18081';
const hangUrl = process.env.HANG_URL || '';
const TIMEOUT_MS = 2500;
const CHECKS = 20;

const checks = [];
for (let i = 1; i <= CHECKS; i += 1) {
  const name = `dep${String(i).padStart(2, '0')}`;
  if (i === CHECKS && hangUrl) {
    checks.push({ name: 'hanging', url: `${hangUrl}/ok` });
  } else {
    checks.push({ name, url: `${fastUrl}/${name}` });
  }
}

const agent = new http.Agent({ keepAlive: true });

function probe(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, signal: AbortSignal.timeout(TIMEOUT_MS) }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode >= 200 && res.statusCode < 400) resolve();
        else reject(new Error(`status ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

async function readiness() {
  const results = await Promise.allSettled(checks.map((c) => probe(c.url)));
  const report = {};
  let failed = false;
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      report[checks[i].name] = { status: 'up' };
    } else {
      failed = true;
      report[checks[i].name] = { status: 'down', error: String(r.reason && r.reason.message) };
    }
  });
  if (failed) throw new HealthCheckError('dependency check failed', report);
  return report;
}

const server = http.createServer((req, res) => {
  res.statusCode = 404;
  res.end();
});
server.keepAliveTimeout = 60_000;

createTerminus(server, {
  healthChecks: {
    '/readyz': readiness,
    '/livez': async () => ({}),
  },
  signals: ['SIGTERM', 'SIGINT'],
  timeout: 1000,
});

server.listen(port, '127.0.0.1', () => {
  console.log(`node-terminus: listening on 127.0.0.1:${port}, ${checks.length} checks`);
});
