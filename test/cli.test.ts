/**
 * The bin/ contract of ../shared/sytest/README.md: run exactly as Sytest runs them, with an
 * empty environment and another working directory, against the compiled code (`npm test`
 * builds first).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const bin = (name: string): string => path.join(root, 'bin', name);
const sytestEnv = { LOG_DIR: '/tmp', DENDRITE_TRACE_SQL: '', DENDRITE_TRACE_HTTP: '', DENDRITE_TRACE_INTERNAL: '' };

function run(name: string, args: string[], opts: { cwd?: string } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin(name), args, { env: sytestEnv, cwd: opts.cwd ?? tmpdir(), encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Sytest does not verify our self-signed certificate; neither does this. */
function httpsGet(url: string): Promise<{ status: number; contentType: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { rejectUnauthorized: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body }));
      })
      .on('error', reject);
  });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitConnectable(port: number, deadlineMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, 'localhost', () => {
        sock.destroy();
        resolve(true);
      }).on('error', () => resolve(false));
    });
    if (ok) return Date.now() - start;
    if (Date.now() - start > deadlineMs) throw new Error(`port ${port} not connectable within ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Starts bin/dendrite as Sytest does and returns the child, the time to connectable, and a stopper. */
async function startLikeSytest(hsDir: string, httpsPort: number) {
  const started = Date.now();
  const child = spawn(
    bin('dendrite'),
    ['--config', path.join(hsDir, 'dendrite.yaml'), '--http-bind-address', `localhost:${httpsPort + 1}`, '--https-bind-address', `localhost:${httpsPort}`,
      '--tls-cert', path.join(hsDir, 'server.crt'), '--tls-key', path.join(hsDir, 'server.key'), '--really-enable-open-registration'],
    { env: { ...sytestEnv, LOG_DIR: hsDir }, cwd: tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await Promise.race([
    waitConnectable(httpsPort, 10_000),
    exited.then((code) => {
      throw new Error(`dendrite exited ${code} before listening: ${output}`);
    }),
  ]);
  const readyMs = Date.now() - started;
  return {
    readyMs,
    output: () => output,
    stop: async (): Promise<{ code: number | null; ms: number }> => {
      const t = Date.now();
      child.kill('SIGINT');
      const code = await exited;
      return { code, ms: Date.now() - t };
    },
  };
}

function prepareHsDir(db?: string): string {
  const hsDir = mkdtempSync(path.join(tmpdir(), 'server-0-'));
  const gen = run('generate-config', ['-ci', '-dir', hsDir, ...(db ? ['-db', db] : [])]);
  expect(gen.status).toBe(0);
  const doc = parseYaml(gen.stdout) as Record<string, Record<string, unknown>>;
  // What Sytest edits (see ../shared/sytest/README.md, step 3).
  doc.global!.server_name = 'localhost:8800';
  doc.global!.private_key = path.join(hsDir, 'matrix_key.pem');
  doc.logging = [{ type: 'file', level: 'trace', params: { path: path.join(hsDir, 'dendrite-logs') } }] as unknown as Record<string, unknown>;
  writeFileSync(path.join(hsDir, 'dendrite.yaml'), JSON.stringify(doc));
  const keys = run('generate-keys', ['--private-key', path.join(hsDir, 'matrix_key.pem'), '--tls-cert', path.join(hsDir, 'server.crt'), '--tls-key', path.join(hsDir, 'server.key')]);
  expect(keys.status, keys.stderr).toBe(0);
  return hsDir;
}

describe('bin/ with an empty environment', () => {
  it('generate-config prints only a YAML mapping on stdout', () => {
    const r = run('generate-config', ['-ci', '-dir', '/tmp/hs']);
    expect(r.status).toBe(0);
    const doc = parseYaml(r.stdout) as Record<string, Record<string, unknown>>;
    expect(doc.version).toBe(2);
    expect((doc.client_api as Record<string, unknown>).registration_disabled).toBe(false);
    expect(run('generate-config', ['--bogus']).status).toBe(2);
  });

  it('generate-keys writes Dendrite formats and never overwrites a signing key', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'keys-'));
    const key = path.join(dir, 'matrix_key.pem');
    const r = run('generate-keys', ['--private-key', key, '--tls-cert', path.join(dir, 'c.crt'), '--tls-key', path.join(dir, 'c.key'), '--keysize', '2048']);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:[A-Za-z0-9_]+\n/);
    expect(readFileSync(path.join(dir, 'c.key'), 'utf8')).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    expect(readFileSync(path.join(dir, 'c.crt'), 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const again = run('generate-keys', ['--private-key', key]);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('refusing to overwrite');
  });

  it('generate-config -normalise fills in every default and keeps what the file sets', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'norm-'));
    const file = path.join(dir, 'partial.yaml');
    writeFileSync(file, 'global:\n  server_name: example.org\nuser_api:\n  bcrypt_cost: 12\n');
    const r = run('generate-config', ['-normalise', file]);
    expect(r.status, r.stderr).toBe(0);
    const doc = parseYaml(r.stdout) as Record<string, Record<string, unknown>>;
    expect(doc.global!.server_name).toBe('example.org');
    expect(doc.user_api!.bcrypt_cost).toBe(12);
    expect(doc.global!.key_validity_period).toBe('168h0m0s');
    expect(doc.media_api!.max_file_size_bytes).toBe(10485760);
    writeFileSync(file, 'user_api: { bcrypt_cost: 99 }\n');
    const bad = run('generate-config', ['-normalise', file]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/user_api.bcrypt_cost: must be at most 31/);
  });

  it('dendrite --version', () => {
    const r = run('dendrite', ['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('bin/dendrite started as Sytest starts it', () => {
  it('serves HTTPS within 2 s on SQLite and stops cleanly on SIGINT', async () => {
    const hsDir = prepareHsDir();
    const port = await freePort();
    const s = await startLikeSytest(hsDir, port);
    expect(s.readyMs).toBeLessThan(2000);
    const res = await fetch(`http://localhost:${port + 1}/_matrix/client/versions`);
    expect(res.headers.get('content-type')).toBe('application/json');
    const overTls = await httpsGet(`https://localhost:${port}/_matrix/federation/v1/version`);
    expect(overTls.status).toBe(200);
    expect(overTls.contentType).toBe('application/json');
    expect(JSON.parse(overTls.body).server.name).toBe('dendrite-ts');
    const stopped = await s.stop();
    expect(stopped.code).toBe(0);
    expect(stopped.ms).toBeLessThan(5000);
    expect(existsSync(path.join(hsDir, 'dendrite-logs', 'dendrite.log'))).toBe(true);
    for (const c of ['roomserver', 'userapi', 'syncapi', 'federationapi', 'mediaapi']) {
      expect(existsSync(path.join(hsDir, `dendrite_${c}.db`)), c).toBe(true);
    }
  });

  describe('on PostgreSQL with the empty-host URI', () => {
    const dbName = `cli_test_${process.pid}_${Date.now()}`;
    const admin = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' });
    beforeAll(async () => {
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
    });
    afterAll(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await admin.end();
    });

    it('serves HTTPS within 2 s and creates its schema', async () => {
      const hsDir = prepareHsDir(`postgresql://postgres:@/${dbName}?sslmode=disable`);
      const port = await freePort();
      const s = await startLikeSytest(hsDir, port);
      expect(s.readyMs).toBeLessThan(2000);
      // It connected through the empty-host URI and created each component's schema history.
      const db = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: dbName });
      await db.connect();
      const tables = await db.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
      await db.end();
      const names = tables.rows.map((r: { table_name: string }) => r.table_name);
      for (const c of ['federationapi', 'mediaapi', 'roomserver', 'syncapi', 'userapi']) expect(names).toContain(`${c}_migrations`);
      expect((await s.stop()).code).toBe(0);
    });
  });
});

describe('bad start-up gives one line naming the cause and a non-zero exit', () => {
  let hsDir: string;
  beforeAll(() => {
    hsDir = prepareHsDir();
  });

  function startWith(mutate: (doc: Record<string, Record<string, unknown>>) => void, extra: string[] = []): { status: number | null; stderr: string } {
    const doc = parseYaml(readFileSync(path.join(hsDir, 'dendrite.yaml'), 'utf8')) as Record<string, Record<string, unknown>>;
    mutate(doc);
    const file = path.join(hsDir, `bad-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(file, JSON.stringify(doc));
    return run('dendrite', ['--config', file, '--http-bind-address', '127.0.0.1:0', ...extra]);
  }

  function expectOneLine(r: { status: number | null; stderr: string }, cause: RegExp): void {
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(cause);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  }

  it('unknown database scheme', () => {
    expectOneLine(startWith((d) => (d.room_server = { database: { connection_string: 'mysql://db/x' } })), /room_server.database.connection_string: unsupported database scheme "mysql:"/);
  });
  it('missing signing key file', () => {
    expectOneLine(startWith((d) => (d.global!.private_key = '/nonexistent/matrix_key.pem')), /\/nonexistent\/matrix_key.pem/);
  });
  it('malformed YAML', () => {
    const file = path.join(hsDir, 'broken.yaml');
    writeFileSync(file, 'global:\n  server_name: [oops\n');
    expectOneLine(run('dendrite', ['--config', file]), /malformed YAML/);
  });
  it('a port in use', async () => {
    const blocker = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      expectOneLine(startWith(() => {}, ['--http-bind-address', `127.0.0.1:${port}`]), new RegExp(`127.0.0.1:${port}: the port is already in use`));
    } finally {
      blocker.close();
    }
  });
});
