/**
 * `create-account`: makes an account on a running server, as Dendrite's tool does, through
 * the shared-secret registration API (`/_synapse/admin/v1/register`) with the secret from the
 * config file. Going through the server, rather than its database, keeps one writer of the
 * accounts table and works the same for a monolith, a polylith or SQLite.
 *
 *   create-account -config dendrite.yaml -username alice [-password ... | -passwordfile F | -passwordstdin] [-admin] [-url http://localhost:8008]
 */
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';
import { readConfigFile } from '../config/config.js';
import { FlagError, parseFlags, reportFlagError, stringFlag, type FlagSpec, type FlagValues } from '../flags.js';

const flags: FlagSpec[] = [
  { name: 'config', kind: 'string', usage: 'The path to the Dendrite config file', default: 'dendrite.yaml' },
  { name: 'username', kind: 'string', usage: 'The username of the account to register (specify the localpart only, e.g. "alice" for "@alice:domain.com")' },
  { name: 'password', kind: 'string', usage: 'The password to associate with the account' },
  { name: 'passwordfile', kind: 'string', usage: 'The file containing the password for the account' },
  { name: 'passwordstdin', kind: 'bool', usage: 'Reads the password from stdin', default: false },
  { name: 'admin', kind: 'bool', usage: 'Create an admin account', default: false },
  { name: 'url', kind: 'string', usage: 'The URL to connect to.', default: 'http://localhost:8008' },
  { name: 'timeout', kind: 'string', usage: 'Timeout for the http client when connecting to the server (e.g. 30s)', default: '30s' },
];

const MAX_PASSWORD = 72; // bcrypt reads no further
const LOCALPART = /^[a-z0-9._=\-/+]+$/;

export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

function durationMs(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new FlagError(`invalid duration "${text}" for -timeout`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}

async function readPassword(values: FlagValues, io: CliIO): Promise<string> {
  const given = stringFlag(values, 'password') || undefined;
  const file = stringFlag(values, 'passwordfile') || undefined;
  if ([given !== undefined, file !== undefined, values['passwordstdin'] === true].filter(Boolean).length > 1) {
    throw new Error('give only one of -password, -passwordfile and -passwordstdin');
  }
  if (given !== undefined) return given;
  if (file !== undefined) return readFileSync(file, 'utf8').trim();
  if (values['passwordstdin'] === true) {
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8').trim();
  }
  const rl = createInterface({ input: io.stdin, output: io.stderr, terminal: false });
  try {
    io.stderr.write('Enter password: ');
    const first = await rl.question('');
    io.stderr.write('Confirm password: ');
    const second = await rl.question('');
    if (first !== second) throw new Error('passwords do not match');
    return first;
  } finally {
    rl.close();
  }
}

async function requestJson(url: string, init: RequestInit, timeoutMs: number): Promise<Record<string, unknown>> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new Error(`${url} answered ${res.status} with a body that is not JSON`);
  }
  if (!res.ok) throw new Error(`${url} answered ${res.status}: ${String(body['errcode'] ?? '')} ${String(body['error'] ?? text)}`.trim());
  return body;
}

export async function runCreateAccount(argv: readonly string[], io: CliIO): Promise<number> {
  try {
    const { values } = parseFlags(argv, flags);
    const username = stringFlag(values, 'username');
    if (!username) throw new FlagError('-username is required');
    if (!LOCALPART.test(username)) throw new Error(`username "${username}" may only contain a-z, 0-9, and ._=-/+`);
    const cfg = readConfigFile(stringFlag(values, 'config') || 'dendrite.yaml');
    const secret = cfg.clientApi.registrationSharedSecret;
    if (!secret) throw new Error('client_api.registration_shared_secret is not set in the config: shared-secret registration is disabled');
    const password = await readPassword(values, io);
    if (password.length === 0) throw new Error('the password must not be empty');
    if (password.length > MAX_PASSWORD) throw new Error(`the password must be at most ${MAX_PASSWORD} characters`);
    const admin = values['admin'] === true;
    const timeoutMs = durationMs(stringFlag(values, 'timeout') || '30s');
    const endpoint = `${(stringFlag(values, 'url') || 'http://localhost:8008').replace(/\/+$/, '')}/_synapse/admin/v1/register`;

    const { nonce } = await requestJson(endpoint, { method: 'GET' }, timeoutMs);
    if (typeof nonce !== 'string') throw new Error(`${endpoint} gave no nonce`);
    const mac = createHmac('sha1', secret).update([nonce, username, password, admin ? 'admin' : 'notadmin'].join('\0')).digest('hex');
    const created = await requestJson(
      endpoint,
      { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ nonce, username, password, admin, mac }) },
      timeoutMs,
    );
    io.stdout.write(`Created account: ${String(created['user_id'])} (AccessToken: ${String(created['access_token'])})\n`);
    return 0;
  } catch (err) {
    if (err instanceof FlagError) return reportFlagError(err, 'create-account', flags);
    io.stderr.write(`create-account: ${(err as Error).message}\n`);
    return 1;
  }
}
