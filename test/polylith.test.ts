/**
 * Polylith: two processes, one component each side, on the real NATS JetStream
 * (127.0.0.1:4222) and PostgreSQL (127.0.0.1:5432). An internal API call made in one
 * process is answered by the other over NATS request/reply.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { NatsBus } from '../setup/jetstream/nats/nats-bus.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateConfigDocument } from '../setup/config/generate.js';
import { formatMatrixKeyPem, generateSigningKey } from '../internal/matrix/index.js';

const root = path.resolve(import.meta.dirname, '..');
const dendrite = path.join(root, 'bin', 'dendrite');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForHttp(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`process exited ${child.exitCode}: ${output()}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} did not answer: ${output()}`);
}

function writeConfig(dir: string, mutate: (doc: Record<string, Record<string, unknown>>) => void, db?: string): string {
  const doc = generateConfigDocument({ ci: false, dir, ...(db ? { db } : {}) }) as Record<string, Record<string, unknown>>;
  doc.logging = [{ type: 'std', level: 'warn' }] as unknown as Record<string, unknown>;
  mutate(doc);
  const file = path.join(dir, `dendrite-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

describe('polylith on NATS and PostgreSQL', () => {
  const dbName = `polylith_test_${process.pid}_${Date.now()}`;
  const prefix = `PolyTest${process.pid}x${Date.now()}`;
  const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
  const children: ChildProcess[] = [];
  let dir: string;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    dir = mkdtempSync(path.join(tmpdir(), 'polylith-'));
    const { keyId, seed } = generateSigningKey();
    writeFileSync(path.join(dir, 'matrix_key.pem'), formatMatrixKeyPem(keyId, seed));
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    // The streams this run made on the shared NATS server.
    const bus = await NatsBus.connect({ addresses: ['127.0.0.1:4222'], topicPrefix: prefix, logger: pino({ level: 'silent' }) });
    await bus.deleteStreams();
    await bus.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });

  function start(components: string, port: number, config: string): { child: ChildProcess; output: () => string } {
    const child = spawn(dendrite, ['--config', config, '--components', components, '--http-bind-address', `127.0.0.1:${port}`], {
      env: {},
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, output: () => out };
  }

  it('answers an internal API call from one process in the other', async () => {
    const config = writeConfig(
      dir,
      (doc) => {
        doc.global!.jetstream = { addresses: ['127.0.0.1:4222'], topic_prefix: prefix, storage_path: dir };
      },
      `postgresql://postgres:@/${dbName}?sslmode=disable`,
    );
    const [portA, portB] = [await freePort(), await freePort()];
    const a = start('roomserver', portA, config);
    const b = start('clientapi,federationapi', portB, config);
    await waitForHttp(`http://127.0.0.1:${portA}/_dendrite/status`, a.child, a.output);
    await waitForHttp(`http://127.0.0.1:${portB}/_matrix/client/versions`, b.child, b.output);

    const res = await fetch(`http://127.0.0.1:${portB}/_dendrite/status`);
    const body = (await res.json()) as { components: Record<string, { pid?: number; error?: string }> };
    // Served by process A, reached from B over NATS.
    expect(body.components.roomserver?.pid).toBe(a.child.pid);
    // Local to B.
    expect(body.components.clientapi?.pid).toBe(b.child.pid);
    // Run nowhere: the call fails with an error instead of hanging.
    expect(body.components.syncapi?.error).toMatch(/no responders|timed out|not available/i);

    // Process A's clientapi routes are not there: it runs only the roomserver.
    expect((await fetch(`http://127.0.0.1:${portA}/_matrix/client/versions`)).status).toBe(404);

    for (const p of [a, b]) {
      p.child.kill('SIGINT');
      const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
      expect(code).toBe(0);
    }
  });

  it.each([
    ['no NATS addresses', (doc: Record<string, Record<string, unknown>>) => (doc.global!.database = { connection_string: 'postgresql://postgres:@/x' }), /needs an external NATS JetStream/],
    ['SQLite databases', (doc: Record<string, Record<string, unknown>>) => (doc.global!.jetstream = { addresses: ['127.0.0.1:4222'] }), /needs PostgreSQL/],
  ])('refuses to start with %s', (_name, mutate, message) => {
    const config = writeConfig(dir, mutate);
    const r = spawnSync(dendrite, ['--config', config, '--components', 'roomserver', '--http-bind-address', '127.0.0.1:0'], { env: {}, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toMatch(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('refuses an unknown component name', () => {
    const config = writeConfig(dir, () => {});
    const r = spawnSync(dendrite, ['--config', config, '--components', 'roomserver,teapot'], { env: {}, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/unknown component "teapot"/);
  });
});
