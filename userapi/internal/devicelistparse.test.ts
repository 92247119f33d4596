import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../internal/matrix/index.js';
import { MAX_DEVICES_PER_USER, parseCrossSigning, parseDeviceListUpdate, parseUserDevices } from './devicelistparse.js';

const BOB = '@bob:remote.test';
const keys = (userId: string, deviceId: string) => ({ user_id: userId, device_id: deviceId, keys: { [`ed25519:${deviceId}`]: 'k' }, unsigned: { device_display_name: 'theirs' } });
const PUB = 'A'.repeat(43);
const master = (userId: string, usage = 'master') => ({ user_id: userId, usage: [usage], keys: { [`ed25519:${PUB}`]: PUB } });

describe('device list input from other servers', () => {
  it('parses an m.device_list_update, keeping keys as canonical JSON without unsigned', () => {
    const u = parseDeviceListUpdate({ user_id: BOB, device_id: 'D', stream_id: 4, prev_id: [3], device_display_name: 'phone', keys: keys(BOB, 'D') });
    const { unsigned: _u, ...signed } = keys(BOB, 'D');
    expect(u).toEqual({ userId: BOB, deviceId: 'D', streamId: 4, prevIds: [3], deleted: false, displayName: 'phone', keyJson: canonicalJson(signed) });
    expect(parseDeviceListUpdate({ user_id: BOB, device_id: 'D', stream_id: 5, deleted: true, keys: 'ignored' })).toMatchObject({ deleted: true, keyJson: null, prevIds: [] });
  });

  it.each([
    ['no user', { device_id: 'D', stream_id: 1 }],
    ['bad user', { user_id: 'bob', device_id: 'D', stream_id: 1 }],
    ['no device', { user_id: BOB, stream_id: 1 }],
    ['long device', { user_id: BOB, device_id: 'x'.repeat(300), stream_id: 1 }],
    ['fractional stream', { user_id: BOB, device_id: 'D', stream_id: 1.5 }],
    ['negative stream', { user_id: BOB, device_id: 'D', stream_id: -1 }],
    ['prev not a list', { user_id: BOB, device_id: 'D', stream_id: 1, prev_id: 0 }],
    ['prev strings', { user_id: BOB, device_id: 'D', stream_id: 1, prev_id: ['0'] }],
    ['too many prev', { user_id: BOB, device_id: 'D', stream_id: 1, prev_id: Array.from({ length: 101 }, (_, i) => i) }],
    ['keys of another user', { user_id: BOB, device_id: 'D', stream_id: 1, keys: keys('@eve:evil.test', 'D') }],
    ['keys of another device', { user_id: BOB, device_id: 'D', stream_id: 1, keys: keys(BOB, 'E') }],
    ['keys not an object', { user_id: BOB, device_id: 'D', stream_id: 1, keys: 'k' }],
    ['keys whose keys are not an object', { user_id: BOB, device_id: 'D', stream_id: 1, keys: { keys: 'k' } }],
  ])('refuses an update with %s', (_name, content) => {
    expect(parseDeviceListUpdate(content as Record<string, unknown>)).toHaveProperty('error');
  });

  it('keeps keys that name no user or device as they are (their signatures are for clients to check; Sytest sends such)', () => {
    const u = parseDeviceListUpdate({ user_id: BOB, device_id: 'D', stream_id: 2, prev_id: [1], keys: { device_keys: {} } });
    expect(u).toMatchObject({ keyJson: canonicalJson({ device_keys: {} }) });
  });

  it('parses /user/devices: devices with bad keys are listed without keys, duplicates once, at most MAX_DEVICES_PER_USER', () => {
    const list = parseUserDevices(BOB, {
      user_id: BOB,
      stream_id: 9,
      devices: [{ device_id: 'A', keys: keys(BOB, 'A'), device_display_name: 'a' }, { device_id: 'B', keys: keys('@eve:evil.test', 'B') }, { device_id: 'A' }, 'junk', { device_id: 7 }],
      master_key: master(BOB),
      self_signing_key: master(BOB, 'master'),
    });
    const { unsigned: _u, ...signedA } = keys(BOB, 'A');
    expect(list).toMatchObject({ userId: BOB, streamId: 9, devices: [{ deviceId: 'A', displayName: 'a', keyJson: canonicalJson(signedA) }, { deviceId: 'B', displayName: null, keyJson: null }] });
    expect((list as { crossSigning: Map<string, string> }).crossSigning).toEqual(new Map([['master', canonicalJson(master(BOB))]]));
    expect(parseUserDevices(BOB, { user_id: '@eve:evil.test', devices: [] })).toHaveProperty('error');
    expect(parseUserDevices(BOB, { user_id: BOB, devices: {} })).toHaveProperty('error');
    expect(parseUserDevices(BOB, { user_id: BOB, stream_id: 'x', devices: [] })).toHaveProperty('error');
    expect(parseUserDevices(BOB, { user_id: BOB, devices: [] })).toMatchObject({ streamId: 0, devices: [] });
    const many = parseUserDevices(BOB, { user_id: BOB, devices: Array.from({ length: MAX_DEVICES_PER_USER + 5 }, (_, i) => ({ device_id: `D${i}` })) });
    expect((many as { devices: unknown[] }).devices).toHaveLength(MAX_DEVICES_PER_USER);
  });

  it('takes cross-signing keys only of the user, for their use, with one ed25519 key', () => {
    expect(parseCrossSigning(BOB, { master_key: master('@eve:evil.test'), self_signing_key: master(BOB, 'self_signing') })).toEqual(new Map([['self_signing', canonicalJson(master(BOB, 'self_signing'))]]));
    expect(parseCrossSigning(BOB, { master_key: { ...master(BOB), keys: { 'ed25519:x': 'y' } } })).toEqual(new Map());
    expect(parseCrossSigning(BOB, { master_key: { ...master(BOB), signatures: 'nope' } })).toEqual(new Map());
  });
});
