import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ConfigError, databaseFor, parseConfig, parseConfigYaml, readConfigFile } from './config.js';
import { generateConfigDocument, generateConfigYaml } from './generate.js';
import { parseGoDuration } from './reader.js';

describe('parseConfig', () => {
  it('gives a default for every key when the file is empty', () => {
    const cfg = parseConfigYaml('', '/srv/dendrite');
    expect(cfg.global.serverName).toBe('localhost:8008');
    expect(cfg.global.privateKeyPath).toBe('/srv/dendrite/matrix_key.pem');
    expect(cfg.global.keyValidityPeriodMs).toBe(7 * 24 * 3600 * 1000);
    expect(cfg.global.jetstream).toMatchObject({ addresses: [], topicPrefix: 'Dendrite', inMemory: false });
    expect(cfg.clientApi.registrationDisabled).toBe(true);
    expect(cfg.userApi.bcryptCost).toBe(10);
    expect(cfg.roomServer.defaultRoomVersion).toBe('10');
    expect(cfg.logging).toEqual([{ type: 'std', level: 'info' }]);
  });

  it('reads Dendrite keys, Go durations and sizes', () => {
    const cfg = parseConfigYaml(
      [
        'version: 2',
        'global:',
        '  server_name: example.org',
        '  key_validity_period: 1h30m',
        '  cache: { max_size_estimated: 512mb }',
        '  jetstream: { addresses: [nats://127.0.0.1:4222], topic_prefix: Test }',
        'client_api: { registration_shared_secret: s3cret, rate_limiting: { enabled: false } }',
        'user_api: { bcrypt_cost: 4 }',
        'logging: [{ type: file, level: trace, params: { path: logs } }]',
      ].join('\n'),
      '/base',
    );
    expect(cfg.global.serverName).toBe('example.org');
    expect(cfg.global.keyValidityPeriodMs).toBe(90 * 60 * 1000);
    expect(cfg.global.cache.maxSizeEstimatedBytes).toBe(512 * 1024 * 1024);
    expect(cfg.global.jetstream.addresses).toEqual(['nats://127.0.0.1:4222']);
    expect(cfg.clientApi.registrationSharedSecret).toBe('s3cret');
    expect(cfg.clientApi.rateLimiting.enabled).toBe(false);
    expect(cfg.logging).toEqual([{ type: 'file', level: 'trace', path: '/base/logs' }]);
  });

  it.each([
    ['version: 3', /version: must be 2/],
    ['global: { server_name: "bad name!" }', /global.server_name: .* not a valid server name/],
    ['global: { database: { connection_string: "mysql://x/y" } }', /global.database.connection_string: unsupported database scheme "mysql:"/],
    ['user_api: { bcrypt_cost: 2 }', /user_api.bcrypt_cost: must be at least 4/],
    ['user_api: { bcrypt_cost: lots }', /user_api.bcrypt_cost: must be an integer/],
    ['global: { key_validity_period: forever }', /global.key_validity_period: must be a duration/],
    ['room_server: { default_room_version: "99" }', /room_server.default_room_version: room version "99" is not supported/],
    ['logging: [{ type: syslog }]', /logging\[0\].type: must be "std" or "file"/],
    ['global: [1, 2]', /global: must be a mapping/],
    ['global: {server_name: [unclosed', /malformed YAML/],
    ['- just\n- a list', /must be a YAML mapping/],
  ])('rejects %j naming the key', (yaml, message) => {
    let err: unknown;
    try {
      parseConfigYaml(yaml, '/');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain('\n');
  });

  it('names an unreadable file', () => {
    expect(() => readConfigFile('/nonexistent/dendrite.yaml')).toThrow(/cannot read \/nonexistent\/dendrite.yaml: ENOENT/);
  });

  it('picks per-component, then global, then embedded SQLite databases', () => {
    const cfg = parseConfig(
      { global: { database: { connection_string: 'postgresql://postgres:@/all' } }, sync_api: { database: { connection_string: 'file:sync.db' } } },
      '/d',
    );
    expect(databaseFor(cfg, 'syncapi').connectionString).toBe('file:sync.db');
    expect(databaseFor(cfg, 'roomserver').connectionString).toBe('postgresql://postgres:@/all');
    expect(databaseFor(parseConfig({}, '/d'), 'userapi').connectionString).toBe('file:/d/dendrite_userapi.db');
  });
});

describe('generate-config', () => {
  it('produces YAML that reads back as the same config, for every mode', () => {
    for (const opts of [{ ci: false }, { ci: true, dir: '/hs' }, { ci: true, dir: '/hs', db: 'postgresql://postgres:@/sytest_hs0?sslmode=disable' }]) {
      const yaml = generateConfigYaml(opts);
      expect(parseYaml(yaml)).toEqual(generateConfigDocument(opts));
      const cfg = parseConfigYaml(yaml, '/elsewhere');
      if (opts.ci) {
        expect(cfg.clientApi.registrationDisabled).toBe(false);
        expect(cfg.clientApi.openRegistrationWithoutVerificationEnabled).toBe(true);
        expect(cfg.clientApi.rateLimiting.enabled).toBe(false);
        expect(cfg.global.jetstream.inMemory).toBe(true);
        expect(cfg.federationApi.keyPerspectives).toEqual([]);
        expect(cfg.userApi.bcryptCost).toBe(4);
        expect(cfg.mscs.mscs).toEqual(['msc2836', 'msc2444', 'msc2753']);
        expect(cfg.global.privateKeyPath).toBe('/hs/matrix_key.pem');
      }
      if ('db' in opts) {
        expect(databaseFor(cfg, 'roomserver').connectionString).toBe(opts.db);
        expect(yaml).not.toContain('file:');
      } else if (opts.dir) {
        expect(databaseFor(cfg, 'syncapi').connectionString).toBe('file:/hs/dendrite_syncapi.db');
      }
    }
  });

  it('dendrite-sample.yaml parses and documents every top-level section the generator writes', () => {
    const sample = readFileSync(path.join(import.meta.dirname, '../../dendrite-sample.yaml'), 'utf8');
    const doc = parseYaml(sample) as Record<string, Record<string, unknown>>;
    expect(() => parseConfigYaml(sample, '/x')).not.toThrow();
    const generated = generateConfigDocument({ ci: false }) as Record<string, Record<string, unknown>>;
    for (const [section, body] of Object.entries(generated)) {
      expect(doc, section).toHaveProperty(section);
      if (typeof body === 'object' && !Array.isArray(body)) {
        for (const key of Object.keys(body)) expect(doc[section], `${section}.${key}`).toHaveProperty(key);
      }
    }
  });

  it('round-trips through a file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
    writeFileSync(path.join(dir, 'dendrite.yaml'), generateConfigYaml({ ci: true, serverName: 'hs.test' }));
    expect(readConfigFile(path.join(dir, 'dendrite.yaml')).global.serverName).toBe('hs.test');
  });
});

describe('parseGoDuration', () => {
  it.each([
    ['168h0m0s', 168 * 3600_000],
    ['5m', 300_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['0', 0],
  ])('%s', (text, ms) => expect(parseGoDuration(text)).toBe(ms));
  it.each(['', 'h', '5 m', '5x', '-1s'])('rejects %j', (text) => expect(parseGoDuration(text)).toBeUndefined());
});
