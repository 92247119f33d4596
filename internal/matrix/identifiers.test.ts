import { describe, expect, it } from 'vitest';
import { domainOf, fitsBytes, isRoomIdOfAnyFormat, isValidEventId, isValidRoomId, isValidServerName, isValidUserId } from './identifiers.js';

describe('server names', () => {
  it.each(['matrix.org', 'matrix.org:8888', '1.2.3.4', '1.2.3.4:1234', '[1234:5678::abcd]', '[1234:5678::abcd]:5678', 'localhost', 'Example.COM'])(
    'accepts %s',
    (name) => expect(isValidServerName(name)).toBe(true),
  );
  it.each(['', 'a b', 'x:', 'x:123456', 'x:port', '[zz::1]', 'under_score.org', 'a/b', '[::1', 'é.org'])('rejects %j', (name) =>
    expect(isValidServerName(name)).toBe(false),
  );
});

describe('user IDs', () => {
  it('accepts the current grammar in both modes', () => {
    for (const id of ['@alice:example.org', '@a.b_c=d-e/f+g:x:8448', '@0:[::1]']) {
      expect(isValidUserId(id)).toBe(true);
      expect(isValidUserId(id, { strict: true })).toBe(true);
    }
  });

  it('accepts historical localparts only in the default mode', () => {
    for (const id of ['@Alice:x', '@:x', '@a b\u0001é\u{1F600}:x']) {
      expect(isValidUserId(id)).toBe(true);
      expect(isValidUserId(id, { strict: true })).toBe(false);
    }
  });

  it.each(['alice:x', '@alice', '@a\u0000b:x', '@a\ud800:x', '@a:bad server', '@a:' ])('rejects %j', (id) => {
    expect(isValidUserId(id)).toBe(false);
  });

  it('limits user IDs to 255 bytes of UTF-8', () => {
    const domain = ':example.org';
    expect(isValidUserId('@' + 'a'.repeat(255 - 1 - domain.length) + domain)).toBe(true);
    expect(isValidUserId('@' + 'a'.repeat(256 - 1 - domain.length) + domain)).toBe(false);
    // 84 three-byte characters: 84 code units but 252 bytes.
    expect(isValidUserId('@' + '日'.repeat(84) + domain)).toBe(false);
  });
});

describe('room and event IDs', () => {
  const hash43 = 'Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg';
  it('room IDs with a domain, and hashed room IDs of room version 12', () => {
    expect(isValidRoomId('!abc:example.org', false)).toBe(true);
    expect(isValidRoomId('!abc', false)).toBe(false);
    expect(isValidRoomId('#abc:example.org', false)).toBe(false);
    expect(isValidRoomId('!' + hash43, true)).toBe(true);
    expect(isValidRoomId('!abc:example.org', true)).toBe(false);
    expect(isValidRoomId('!' + hash43.slice(1), true)).toBe(false);
    expect(isRoomIdOfAnyFormat('!' + hash43)).toBe(true);
    expect(isRoomIdOfAnyFormat('!a:b')).toBe(true);
  });

  it('event IDs per format', () => {
    expect(isValidEventId('$abc:example.org', 'v1')).toBe(true);
    expect(isValidEventId('$abc', 'v1')).toBe(false);
    expect(isValidEventId('$' + hash43.replace(/-/g, '+').replace(/_/g, '/'), 'v2')).toBe(true);
    expect(isValidEventId('$' + hash43, 'v2')).toBe(false);
    expect(isValidEventId('$' + hash43, 'v3')).toBe(true);
    expect(isValidEventId('$' + hash43 + 'A', 'v3')).toBe(false);
    expect(isValidEventId('!' + hash43, 'v3')).toBe(false);
  });

  it('domainOf splits at the first colon', () => {
    expect(domainOf('@a:b.org:8448')).toBe('b.org:8448');
    expect(domainOf('$abc')).toBeUndefined();
  });

  it('fitsBytes counts UTF-8 bytes', () => {
    expect(fitsBytes('日'.repeat(85), 255)).toBe(true);
    expect(fitsBytes('日'.repeat(86), 255)).toBe(false);
    expect(fitsBytes('a'.repeat(255), 255)).toBe(true);
  });
});
