/** create-account against a running server, in-process and through bin/create-account. */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { stringify } from 'yaml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateConfigDocument } from '../config/generate.js';
import { getJson, startTestServer, testConfig, type TestServer } from '../../test/harness.js';
import { runCreateAccount } from './create-account.js';

let t: TestServer;
let configFile: string;

function io(stdinText = ''): { io: Parameters<typeof runCreateAccount>[1]; out: () => string; err: () => string } {
  const stdin = new PassThrough();
  stdin.end(stdinText);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  return { io: { stdin, stdout, stderr }, out: () => out, err: () => err };
}

async function login(user: string, password: string): Promise<number> {
  const r = await getJson(`${t.baseUrl}/_matrix/client/v3/login`, {
    method: 'POST',
    body: JSON.stringify({ type: 'm.login.password', identifier: { type: 'm.id.user', user }, password }),
  });
  return r.status;
}

beforeAll(async () => {
  const made = testConfig();
  t = await startTestServer(made);
  // The tool reads the same YAML an operator would (the CI config has a shared secret).
  const doc = generateConfigDocument({ ci: true, dir: made.dir, serverName: 'localhost:8008' });
  configFile = path.join(made.dir, 'dendrite.yaml');
  writeFileSync(configFile, stringify(doc));
});
afterAll(async () => {
  await t.stop();
});

it('creates an account that can log in, with the password from a flag, a file or stdin', async () => {
  const a = io();
  expect(await runCreateAccount(['-config', configFile, '-username', 'alice', '-password', 'pw-alice', '-url', t.baseUrl], a.io)).toBe(0);
  expect(a.out()).toMatch(/^Created account: @alice:localhost:8008 \(AccessToken: syt_\S+\)\n$/);
  expect(await login('alice', 'pw-alice')).toBe(200);

  const file = path.join(path.dirname(configFile), 'pw.txt');
  writeFileSync(file, 'pw-from-file\n');
  expect(await runCreateAccount(['--config', configFile, '--username', 'bob', '--passwordfile', file, '--url', t.baseUrl], io().io)).toBe(0);
  expect(await login('bob', 'pw-from-file')).toBe(200);

  expect(await runCreateAccount(['-config', configFile, '-username', 'carol', '-passwordstdin', '-admin', '-url', t.baseUrl], io('pw-stdin\n').io)).toBe(0);
  expect(await login('carol', 'pw-stdin')).toBe(200);
});

it('fails with a message for a taken name, a bad name, a missing username or conflicting password sources', async () => {
  const taken = io();
  expect(await runCreateAccount(['-config', configFile, '-username', 'alice', '-password', 'x', '-url', t.baseUrl], taken.io)).toBe(1);
  expect(taken.err()).toMatch(/M_USER_IN_USE/);
  const bad = io();
  expect(await runCreateAccount(['-config', configFile, '-username', 'Bad Name', '-password', 'x', '-url', t.baseUrl], bad.io)).toBe(1);
  expect(bad.err()).toMatch(/may only contain/);
  expect(await runCreateAccount(['-config', configFile, '-password', 'x'], io().io)).toBe(2);
  const both = io();
  expect(await runCreateAccount(['-config', configFile, '-username', 'dave', '-password', 'x', '-passwordstdin', '-url', t.baseUrl], both.io)).toBe(1);
  expect(both.err()).toMatch(/only one of/);
  const down = io();
  expect(await runCreateAccount(['-config', configFile, '-username', 'dave', '-password', 'x', '-url', 'http://127.0.0.1:1', '-timeout', '2s'], down.io)).toBe(1);
  expect(down.err()).toMatch(/create-account: /);
});

it('bin/create-account runs the compiled tool with an empty environment', async () => {
  // Asynchronously: the server answering it runs in this process.
  const child = spawn(path.resolve(import.meta.dirname, '../../bin/create-account'), ['-config', configFile, '-username', 'erin', '-password', 'pw-erin', '-url', t.baseUrl], { env: {} });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  expect(stderr).toBe('');
  expect(stdout).toMatch(/Created account: @erin:localhost:8008/);
  expect(status).toBe(0);
});
