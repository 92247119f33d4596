/**
 * bench/http: requests/s of GET /_matrix/client/versions on a real monolith (embedded
 * defaults, in-memory bus), then the bus publish-to-consume figures (bus.ts).
 * Run: npm run build && node dist/bench/http/main.js
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import pino from 'pino';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { parseConfig } from '../../setup/config/config.js';
import { generateConfigDocument } from '../../setup/config/generate.js';
import { startServer } from '../../setup/server.js';
import { busBenches } from './bus.js';

export async function httpBenches(durationSec = 5): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-http-'));
  const doc = generateConfigDocument({ ci: true, dir }) as Record<string, unknown>;
  doc.logging = [{ type: 'std', level: 'error' }];
  const { keyId, seed } = generateSigningKey();
  writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  const server = await startServer({ cfg: parseConfig(doc, dir), logger: pino({ level: 'error' }), httpBind: { host: '127.0.0.1', port: 0 } });
  try {
    const url = `http://127.0.0.1:${server.http!.address.port}/_matrix/client/versions`;
    // The load generator runs in a worker thread so that it does not share the server's event loop.
    const result = await autocannon({ url, connections: 50, pipelining: 1, duration: durationSec, workers: 1 });
    return {
      'versions requests/s (mean)': Math.round(result.requests.average),
      'versions latency p50 ms': result.latency.p50,
      'versions latency p99 ms': result.latency.p99,
      'versions non-2xx': result.non2xx,
    };
  } finally {
    await server.shutdown('bench done');
  }
}

export function printFigures(title: string, figures: Record<string, number>): void {
  console.log(`# ${title}`);
  for (const [k, v] of Object.entries(figures)) console.log(`${k}: ${v}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printFigures('HTTP (one process, autocannon 50 connections, 5 s)', await httpBenches());
  printFigures('bus publish-to-consume', await busBenches());
}
