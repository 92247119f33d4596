/**
 * A 50 MB upload and download through HTTP with the server in this process: both directions
 * stream (request body → hash → disk; disk → response), so the process's resident memory
 * must not grow by anything like the file's size.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';

const SIZE = 50 * 1024 * 1024;
const CHUNK = 256 * 1024;
const run = promisify(execFile);
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
let t: TestServer;
let token: string;

beforeAll(async () => {
  const { cfg, dir } = testConfig((doc) => {
    (doc.media_api as Record<string, unknown>).max_file_size_bytes = 100 * 1024 * 1024;
  });
  t = await startTestServer({ cfg, dir });
  const r = await getJson(`${t.baseUrl}/_matrix/client/v3/register`, {
    method: 'POST',
    body: JSON.stringify({ auth: { type: 'm.login.dummy' }, username: 'big', password: 'pw' }),
  });
  token = r.body.access_token as string;
});
afterAll(async () => {
  await t.stop();
});

/** Runs curl (out of process, so that only the server's memory counts here). */
async function curl(args: string[]): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '--fail-with-body', ...args], { maxBuffer: 1024 * 1024 });
  return stdout;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

it('uploads and downloads 50 MB with flat memory', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bigmedia-'));
  const src = path.join(dir, 'src.bin');
  const dst = path.join(dir, 'dst.bin');
  // Deterministic, non-repeating enough content, written with one reused buffer.
  const fd = openSync(src, 'w');
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < SIZE / CHUNK; i++) {
    chunk.fill(i % 251);
    chunk.writeUInt32BE(i, 0);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const want = await sha256File(src);

  // Warm up the routes (first-use allocations are not per-byte costs), then start from a collected heap.
  const small = JSON.parse(await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '--data-binary', 'warm-up', `${t.baseUrl}/_matrix/media/v3/upload`])) as { content_uri: string };
  await curl(['-o', '/dev/null', `${t.baseUrl}/_matrix/media/v3/download/${small.content_uri.slice('mxc://'.length)}`]);
  gc();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  // Sample often; collect garbage first in every other sample, so that what is measured is
  // memory held (a buffered file would be) rather than garbage the collector has not reached yet.
  let n = 0;
  const sampler = setInterval(() => {
    if (n++ % 2 === 0) gc();
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  try {
    const up = JSON.parse(
      await curl(['-X', 'POST', '-H', `Authorization: Bearer ${token}`, '-H', 'Content-Type: application/octet-stream', '--data-binary', `@${src}`, `${t.baseUrl}/_matrix/media/v3/upload?filename=big.bin`]),
    ) as { content_uri: string };
    const uploadGrowth = peak - baseline;
    await curl(['-o', dst, `${t.baseUrl}/_matrix/media/v3/download/${up.content_uri.slice('mxc://'.length)}`]);
    const growth = peak - baseline;
    expect(statSync(dst).size).toBe(SIZE);
    expect(await sha256File(dst)).toBe(want);
    console.log(`RSS growth: upload ${(uploadGrowth / 2 ** 20).toFixed(1)} MB, upload+download ${(growth / 2 ** 20).toFixed(1)} MB for a ${SIZE / 2 ** 20} MB file`);
    expect(growth).toBeLessThan(20 * 1024 * 1024);
  } finally {
    clearInterval(sampler);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
