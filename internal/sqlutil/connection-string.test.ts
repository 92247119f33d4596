import { describe, expect, it } from 'vitest';
import { connectionScheme, describeTarget, parseConnectionString, targetKey } from './connection-string.js';
import { DatabaseConfigError, UnsupportedSchemeError } from './errors.js';

const pgDefaults = { dialect: 'postgres', host: '127.0.0.1', port: 5432, user: 'postgres', password: '', sslMode: 'require' };

describe('parseConnectionString: PostgreSQL', () => {
  it.each([
    // Dendrite's (and Sytest's) empty-host form: lib/pq's local default, plain TCP.
    ['postgresql://postgres:@/sytest_hs0?sslmode=disable', { ...pgDefaults, database: 'sytest_hs0', sslMode: 'disable' }],
    ['postgres://postgres@/dendrite', { ...pgDefaults, database: 'dendrite' }],
    ['postgres://u:p%40ss%2Fw@db.example:6543/dendrite', { ...pgDefaults, host: 'db.example', port: 6543, user: 'u', password: 'p@ss/w', database: 'dendrite' }],
    ['postgresql://db.example/d', { ...pgDefaults, host: 'db.example', database: 'd' }],
    ['postgresql://[::1]:5433/d?sslmode=verify-full', { ...pgDefaults, host: '::1', port: 5433, database: 'd', sslMode: 'verify-full' }],
    // Query parameters override the URL, as in lib/pq.
    ['postgresql://x:y@h1:1/a?host=10.0.0.5&port=6000&user=bob&password=pw&dbname=b', { ...pgDefaults, host: '10.0.0.5', port: 6000, user: 'bob', password: 'pw', database: 'b' }],
    ['postgresql:///d?host=/var/run/postgresql', { ...pgDefaults, host: '/var/run/postgresql', database: 'd' }],
    ['postgresql://%2Fvar%2Frun%2Fpostgresql/d', { ...pgDefaults, host: '/var/run/postgresql', database: 'd' }],
    // No database: the server's default, the user's name.
    ['postgresql://alice@h', { ...pgDefaults, host: 'h', user: 'alice', database: 'alice' }],
    [
      'postgres://h/d?sslmode=verify-ca&sslrootcert=/etc/ca.pem&connect_timeout=2.5&application_name=dendrite&binary_parameters=yes',
      { ...pgDefaults, host: 'h', database: 'd', sslMode: 'verify-ca', sslRootCert: '/etc/ca.pem', connectTimeoutMs: 2500, applicationName: 'dendrite' },
    ],
    ['POSTGRESQL://h/d', { ...pgDefaults, host: 'h', database: 'd' }],
  ])('%s', (conn, expected) => {
    expect(parseConnectionString(conn)).toEqual(expected);
  });

  it.each([
    ['postgresql://h:99999/d', /invalid port "99999"/],
    ['postgresql://h:abc/d', /invalid port "abc"/],
    ['postgresql://h/d?sslmode=prefer', /unsupported sslmode "prefer".*use disable, require, verify-ca, verify-full/],
    ['postgresql://h/d?connect_timeout=soon', /invalid connect_timeout "soon"/],
    ['postgresql://u:%zz@h/d', /malformed %-escape in the password/],
    ['postgresql://h/d%/x', /malformed %-escape in the database name/],
    ['postgresql:/h/d', /malformed PostgreSQL connection string/],
  ])('refuses %s', (conn, why) => {
    expect(() => parseConnectionString(conn)).toThrow(DatabaseConfigError);
    expect(() => parseConnectionString(conn)).toThrow(why);
  });

  it('hides the password in errors', () => {
    expect(() => parseConnectionString('postgresql://me:secret@h:0/d')).toThrow('"postgresql://me:***@h:0/d"');
  });

  it('describes the target without secrets', () => {
    expect(describeTarget(parseConnectionString('postgresql://me:secret@/db?sslmode=disable'))).toBe('PostgreSQL at 127.0.0.1:5432/db');
    expect(describeTarget(parseConnectionString('postgresql://[::1]/db'))).toBe('PostgreSQL at [::1]:5432/db');
    expect(describeTarget(parseConnectionString('postgresql:///db?host=/run/pg'))).toBe('PostgreSQL at /run/pg (socket)/db');
  });
});

describe('parseConnectionString: SQLite', () => {
  it.each([
    ['file:dendrite.db', '/base/dendrite.db'],
    ['file:./data/x.db', '/base/data/x.db'],
    ['file:/var/lib/d.db', '/var/lib/d.db'],
    ['file:///var/lib/d.db', '/var/lib/d.db'],
    ['file://localhost/var/lib/d.db', '/var/lib/d.db'],
    ['file:d.db?_busy_timeout=5000&cache=shared', '/base/d.db'],
    ['file:my%20db.db', '/base/my db.db'],
    ['FILE:d.db', '/base/d.db'],
    ['file::memory:', ':memory:'],
    [':memory:', ':memory:'],
  ])('%s', (conn, file) => {
    expect(parseConnectionString(conn, '/base')).toEqual({ dialect: 'sqlite', file });
  });

  it('resolves relative paths against the working directory by default', () => {
    expect(parseConnectionString('file:x.db')).toEqual({ dialect: 'sqlite', file: `${process.cwd()}/x.db` });
  });

  it.each(['file:', 'file://', 'file:?mode=ro'])('refuses %j, which names no file', (conn) => {
    expect(() => parseConnectionString(conn)).toThrow(/names no file \(write file:path\)/);
  });

  it('gives one key to two spellings of one file, and different keys to different databases', () => {
    const key = (c: string): string => targetKey(parseConnectionString(c, '/base'));
    expect(key('file:a.db')).toBe(key('file:./a.db'));
    expect(key('file:a.db')).toBe(key('file:///base/a.db'));
    expect(key('file:a.db')).not.toBe(key('file:b.db'));
    expect(key('postgresql://postgres:@/d?sslmode=disable')).toBe(key('postgres://postgres@127.0.0.1:5432/d?sslmode=disable'));
    expect(key('postgresql://postgres:@/d?sslmode=disable')).not.toBe(key('postgresql://postgres:@/e?sslmode=disable'));
  });
});

describe('parseConnectionString: other schemes', () => {
  it('names the scheme and the accepted ones', () => {
    let err: unknown;
    try {
      parseConnectionString('mysql://me:secret@host/db');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnsupportedSchemeError);
    expect(err).toBeInstanceOf(DatabaseConfigError);
    const e = err as UnsupportedSchemeError;
    expect(e.scheme).toBe('mysql');
    expect(e.accepted).toEqual(['postgresql://', 'postgres://', 'file:']);
    expect(e.message).toBe('unsupported database scheme "mysql:" in "mysql://me:***@host/db": use postgresql://, postgres://, file:');
  });

  it('suggests file: for a bare path', () => {
    expect(() => parseConnectionString('dendrite.db')).toThrow(
      'database connection string "dendrite.db" has no scheme: use postgresql://, postgres://, file: (a SQLite file is written file:path)',
    );
  });

  it.each([
    ['sqlite:x.db', 'sqlite'],
    ['Postgres+ssl://x', 'postgres+ssl'],
    ['/abs/path.db', undefined],
    [':memory:', undefined],
  ])('connectionScheme(%j) is %j', (conn, scheme) => {
    expect(connectionScheme(conn)).toBe(scheme);
  });
});
