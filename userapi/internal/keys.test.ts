import type { Kysely } from 'kysely';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { generateSigningKey, signJson, type SigningKey } from '../../internal/matrix/index.js';
import { runMigrations } from '../../internal/sqlutil/index.js';
import { describeEachDatabase } from '../../internal/sqlutil/testing.js';
import type { FederationKeyClient, KeyObject, OutputKeyChangeEvent } from '../api/keys.js';
import { KeyStore } from '../storage/keystore.js';
import { userapiMigrations } from '../storage/migrations.js';
import type { UserapiDatabase } from '../storage/tables.js';
import { KeyServerImpl } from './keys.js';

const ALICE = '@alice:hs';
const BOB = '@bob:hs';

function deviceKeys(userId: string, deviceId: string, ed = `ed-${deviceId}`): KeyObject {
  return {
    user_id: userId,
    device_id: deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: { [`curve25519:${deviceId}`]: `cu-${deviceId}`, [`ed25519:${deviceId}`]: ed },
    signatures: { [userId]: { [`ed25519:${deviceId}`]: 'self' } },
  };
}

/** A cross-signing key object for `key`, signed by `signer` when given. */
function crossKey(userId: string, usage: string, key: SigningKey, signer?: SigningKey): KeyObject {
  const obj = { user_id: userId, usage: [usage], keys: { [`ed25519:${key.publicKeyBase64}`]: key.publicKeyBase64 } };
  return signer ? signJson(obj, userId, `ed25519:${signer.publicKeyBase64}`, signer) : obj;
}

describeEachDatabase<UserapiDatabase>('key server', (ctx) => {
  let keys: KeyServerImpl;
  let events: OutputKeyChangeEvent[];
  /** Devices that exist (the devices table's part, which the key server asks about). */
  let devices: Map<string, Map<string, string | null>>;
  let federation: FederationKeyClient | undefined;

  beforeAll(async () => {
    await runMigrations(ctx.db() as unknown as Kysely<unknown>, ctx.dialect, 'userapi', userapiMigrations);
  });

  beforeEach(async () => {
    const db = ctx.db();
    for (const t of ['userapi_device_keys', 'userapi_one_time_keys', 'userapi_fallback_keys', 'userapi_cross_signing_keys', 'userapi_cross_signing_sigs', 'userapi_key_changes'] as const) {
      await db.deleteFrom(t).execute();
    }
    events = [];
    federation = undefined;
    devices = new Map([
      [ALICE, new Map<string, string | null>([['A1', 'phone'], ['A2', null]])],
      [BOB, new Map<string, string | null>([['B1', 'laptop']])],
    ]);
    keys = new KeyServerImpl({
      serverName: 'hs',
      store: new KeyStore(db),
      deviceNames: async (u) => devices.get(u) ?? new Map(),
      publish: async (e) => void events.push(e),
      get federation() {
        return federation;
      },
    });
  });

  describe('upload and query', () => {
    it('stores device keys, answers keys/query with display names, and announces the change once', async () => {
      const up = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A1') });
      expect(up).toEqual({ oneTimeKeyCounts: {} });
      // The same keys again (clients retry) are not a change.
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A1') });
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'device_keys', user_id: ALICE, device_id: 'A1', stream_id: 1, display_name: 'phone' });

      const q = await keys.queryKeys({ userId: BOB, userToDevices: { [ALICE]: [] } });
      expect(q.deviceKeys).toEqual({ [ALICE]: { A1: { ...deviceKeys(ALICE, 'A1'), unsigned: { device_display_name: 'phone' } } } });
      expect(q.failures).toEqual({});
      // A device list asks for those devices only; an unknown user answers with no devices.
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A2', deviceKeys: deviceKeys(ALICE, 'A2') });
      const only = await keys.queryKeys({ userId: BOB, userToDevices: { [ALICE]: ['A2'], '@nobody:hs': [] } });
      expect(Object.keys(only.deviceKeys[ALICE]!)).toEqual(['A2']);
      expect(only.deviceKeys['@nobody:hs']).toEqual({});
      expect(events.map((e) => e.stream_id)).toEqual([1, 2]);
    });

    it('refuses device keys for another user or device, and malformed keys', async () => {
      const wrongUser = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(BOB, 'A1') });
      expect(wrongUser.error?.errcode).toBe('M_INVALID_PARAM');
      const wrongDevice = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A2') });
      expect(wrongDevice.error?.errcode).toBe('M_INVALID_PARAM');
      const badKeys = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: { ...deviceKeys(ALICE, 'A1'), keys: { nocolon: 'x' } } });
      expect(badKeys.error?.errcode).toBe('M_BAD_JSON');
      const badAlgorithms = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: { ...deviceKeys(ALICE, 'A1'), algorithms: 'x' } });
      expect(badAlgorithms.error?.errcode).toBe('M_BAD_JSON');
      const badOtk = await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', oneTimeKeys: { 'signed_curve25519:1': 5 } });
      expect(badOtk.error?.errcode).toBe('M_INVALID_PARAM');
      expect(await ctx.db().selectFrom('userapi_device_keys').selectAll().execute()).toEqual([]);
      expect(events).toEqual([]);
    });

    it('keys of a device that no longer exists are not served', async () => {
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A2', deviceKeys: deviceKeys(ALICE, 'A2') });
      devices.get(ALICE)!.delete('A2');
      expect((await keys.queryKeys({ userId: ALICE, userToDevices: { [ALICE]: [] } })).deviceKeys[ALICE]).toEqual({});
    });

    it('reports remote users in failures without federation, and takes only what a server may say with it', async () => {
      const none = await keys.queryKeys({ userId: ALICE, userToDevices: { '@carol:remote': [] } });
      expect(none.failures).toEqual({ remote: { status: 503, message: 'federation is not available' } });
      federation = {
        queryKeys: async (server, userToDevices) => {
          expect(server).toBe('remote');
          expect(userToDevices).toEqual({ '@carol:remote': [] });
          return {
            deviceKeys: { '@carol:remote': { C1: deviceKeys('@carol:remote', 'C1') }, [ALICE]: { EVIL: deviceKeys(ALICE, 'EVIL') } },
            masterKeys: {},
            selfSigningKeys: {},
          };
        },
        claimKeys: async () => {
          throw new Error('connection refused');
        },
      };
      const got = await keys.queryKeys({ userId: ALICE, userToDevices: { '@carol:remote': [] } });
      expect(got.deviceKeys).toEqual({ '@carol:remote': { C1: deviceKeys('@carol:remote', 'C1') } });
      const claim = await keys.performClaimKeys({ oneTimeKeys: { '@carol:remote': { C1: 'signed_curve25519' } } });
      expect(claim.failures).toEqual({ remote: { status: 503, message: 'connection refused' } });
    });
  });

  describe('one-time and fallback keys', () => {
    it('counts, claims each key once, then falls back to the fallback key', async () => {
      const otks = { 'signed_curve25519:AAAA': { key: 'k1' }, 'signed_curve25519:AAAB': { key: 'k2' }, 'curve25519:AAAC': 'k3' };
      const up = await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: otks, fallbackKeys: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } });
      expect(up.oneTimeKeyCounts).toEqual({ signed_curve25519: 2, curve25519: 1 });
      expect(await keys.queryOneTimeKeyCounts({ userId: BOB, deviceId: 'B1' })).toEqual({
        oneTimeKeyCounts: { signed_curve25519: 2, curve25519: 1 },
        unusedFallbackKeyTypes: ['signed_curve25519'],
      });

      const claimed: unknown[] = [];
      for (let i = 0; i < 3; i++) {
        const r = await keys.performClaimKeys({ oneTimeKeys: { [BOB]: { B1: 'signed_curve25519' } } });
        claimed.push(r.oneTimeKeys[BOB]?.['B1']);
      }
      expect(claimed).toEqual([{ 'signed_curve25519:AAAA': { key: 'k1' } }, { 'signed_curve25519:AAAB': { key: 'k2' } }, { 'signed_curve25519:FB': { key: 'fb', fallback: true } }]);
      const after = await keys.queryOneTimeKeyCounts({ userId: BOB, deviceId: 'B1' });
      expect(after).toEqual({ oneTimeKeyCounts: { curve25519: 1 }, unusedFallbackKeyTypes: [] });
      // The fallback key keeps being handed out until replaced; the same key again stays used.
      const again = await keys.performClaimKeys({ oneTimeKeys: { [BOB]: { B1: 'signed_curve25519' } } });
      expect(again.oneTimeKeys[BOB]?.['B1']).toEqual({ 'signed_curve25519:FB': { key: 'fb', fallback: true } });
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', fallbackKeys: { 'signed_curve25519:FB': { key: 'fb', fallback: true } } });
      expect((await keys.queryOneTimeKeyCounts({ userId: BOB, deviceId: 'B1' })).unusedFallbackKeyTypes).toEqual([]);
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', fallbackKeys: { 'signed_curve25519:FB2': { key: 'fb2', fallback: true } } });
      expect((await keys.queryOneTimeKeyCounts({ userId: BOB, deviceId: 'B1' })).unusedFallbackKeyTypes).toEqual(['signed_curve25519']);
      // Nothing of an algorithm the device never uploaded.
      expect((await keys.performClaimKeys({ oneTimeKeys: { [BOB]: { B1: 'other_alg' } } })).oneTimeKeys).toEqual({});
    });

    it('accepts a one-time key again only with the same content; refuses two fallback keys of one algorithm', async () => {
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: { 'signed_curve25519:X': { key: 'a' } } });
      const same = await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: { 'signed_curve25519:X': { key: 'a' } } });
      expect(same).toEqual({ oneTimeKeyCounts: { signed_curve25519: 1 } });
      const different = await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: { 'signed_curve25519:X': { key: 'b' } } });
      expect(different.error?.errcode).toBe('M_INVALID_PARAM');
      const two = await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', fallbackKeys: { 'a:1': 'x', 'a:2': 'y' } });
      expect(two.error?.errcode).toBe('M_INVALID_PARAM');
    });

    it('a thousand one-time keys in one upload are all stored', async () => {
      const otks = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`signed_curve25519:${String(i).padStart(4, '0')}`, { key: `k${i}` }]));
      const up = await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: otks });
      expect(up.oneTimeKeyCounts).toEqual({ signed_curve25519: 1000 });
    });

    it('concurrent claims never hand out the same key twice', async () => {
      const otks = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`signed_curve25519:${String(i).padStart(2, '0')}`, { key: `k${i}` }]));
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', oneTimeKeys: otks });
      const results = await Promise.all(Array.from({ length: 20 }, () => keys.performClaimKeys({ oneTimeKeys: { [BOB]: { B1: 'signed_curve25519' } } })));
      const ids = results.map((r) => Object.keys(r.oneTimeKeys[BOB]?.['B1'] ?? {})[0]).filter((x) => x !== undefined);
      expect(new Set(ids).size).toBe(20);
      expect((await keys.queryOneTimeKeyCounts({ userId: BOB, deviceId: 'B1' })).oneTimeKeyCounts).toEqual({});
    });
  });

  describe('device removal and the change stream', () => {
    it('drops the keys of deleted devices, announces them, and keys/changes lists each user once', async () => {
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A1'), oneTimeKeys: { 'a:1': 'x' } });
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A2', deviceKeys: deviceKeys(ALICE, 'A2') });
      const afterAlice = (await keys.queryKeyChanges({ fromOffset: 0 })).offset;
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', deviceKeys: deviceKeys(BOB, 'B1') });

      await keys.removeKeysOfDeletedDevices(ALICE, ['A2']);
      expect(events.at(-1)).toMatchObject({ type: 'device_keys', user_id: ALICE, device_id: 'A1', deleted: true, stream_id: 3 });
      expect(await keys.queryOneTimeKeyCounts({ userId: ALICE, deviceId: 'A1' })).toEqual({ oneTimeKeyCounts: {}, unusedFallbackKeyTypes: [] });
      expect(Object.keys((await keys.queryKeys({ userId: ALICE, userToDevices: { [ALICE]: [] } })).deviceKeys[ALICE]!)).toEqual(['A2']);

      const all = await keys.queryKeyChanges({ fromOffset: 0 });
      expect(all.userIds).toEqual([BOB, ALICE]);
      expect(all.offset).toBe(events.at(-1)!.offset);
      const since = await keys.queryKeyChanges({ fromOffset: afterAlice });
      expect(since.userIds).toEqual([BOB, ALICE]);
      expect((await keys.queryKeyChanges({ fromOffset: all.offset })).userIds).toEqual([]);
      // Bounded above: only changes up to `to`.
      expect((await keys.queryKeyChanges({ fromOffset: 0, toOffset: afterAlice })).userIds).toEqual([]);
      // Nothing to remove: no announcement.
      const n = events.length;
      await keys.removeKeysOfDeletedDevices(ALICE, ['A2']);
      expect(events.length).toBe(n);
    });

    it('the device list version moves by one per device change only, and each change names the one before', async () => {
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A1') });
      expect(events.at(-1)).toMatchObject({ stream_id: 1 });
      expect(events.at(-1)!.prev_stream_id).toBeUndefined();
      const m = generateSigningKey();
      expect(await keys.performUploadDeviceSigningKeys({ userId: ALICE, masterKey: crossKey(ALICE, 'master', m) })).toEqual({});
      expect(events.at(-1)).toMatchObject({ type: 'cross_signing' });
      expect(events.at(-1)!.stream_id).toBeUndefined();
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A2', deviceKeys: deviceKeys(ALICE, 'A2') });
      expect(events.at(-1)).toMatchObject({ device_id: 'A2', stream_id: 2, prev_stream_id: 1 });
      expect(await keys.queryDeviceListVersion({ userId: ALICE })).toEqual({ streamId: 2 });
      expect(await keys.queryDeviceListVersion({ userId: BOB })).toEqual({ streamId: 0 });
      // Another server's user's change is announced without touching version numbers of ours.
      await keys.announceRemoteChange({ type: 'device_keys', user_id: '@carol:remote' });
      expect(events.at(-1)).toEqual({ type: 'device_keys', user_id: '@carol:remote', offset: expect.any(Number) });
      expect((await keys.queryKeyChanges({ fromOffset: 0 })).userIds).toContain('@carol:remote');
    });

    it('remote key changes: only the user\'s own server may announce them; refreshDevices needs a remote user and federation', async () => {
      expect(await keys.performRemoteKeyChange({ userId: '@carol:remote', origin: 'evil' })).toEqual({ error: 'not a user of the sending server' });
      expect(await keys.performRemoteKeyChange({ userId: ALICE, origin: 'hs' })).toEqual({ error: 'not a user of the sending server' });
      expect(events).toEqual([]);
      // Without followed lists, an EDU is announced as it is.
      expect(await keys.performRemoteKeyChange({ userId: '@carol:remote', origin: 'remote', edu: { type: 'm.device_list_update', content: { user_id: '@carol:remote' } } })).toEqual({});
      expect(events).toMatchObject([{ type: 'device_keys', user_id: '@carol:remote' }]);
      expect((await keys.performRefreshRemoteDevices({ userId: ALICE })).error?.errcode).toBe('M_INVALID_PARAM');
      expect((await keys.performRefreshRemoteDevices({ userId: 'nobody' })).error?.errcode).toBe('M_INVALID_PARAM');
      expect((await keys.performRefreshRemoteDevices({ userId: '@carol:remote' })).error?.errcode).toBe('M_UNKNOWN');
    });

    it('a renamed device is a device list change, with or without keys', async () => {
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: deviceKeys(ALICE, 'A1') });
      await keys.deviceRenamed(ALICE, 'A1', 'tablet');
      expect(events.at(-1)).toMatchObject({ device_id: 'A1', display_name: 'tablet', stream_id: 2 });
      await keys.deviceRenamed(ALICE, 'A2', 'no keys');
      expect(events).toHaveLength(3);
      expect(events.at(-1)).toMatchObject({ device_id: 'A2', display_name: 'no keys', stream_id: 3, prev_stream_id: 2 });
      expect(events.at(-1)!.keys).toBeUndefined();
    });

    it('a deleted device without keys is announced too', async () => {
      await keys.removeKeysOfDeletedDevices(ALICE, ['A2'], ['A3']);
      expect(events).toEqual([expect.objectContaining({ type: 'device_keys', user_id: ALICE, device_id: 'A3', deleted: true, stream_id: 1 })]);
      // A device named as removed but still there is not.
      await keys.removeKeysOfDeletedDevices(ALICE, ['A2'], ['A2']);
      expect(events).toHaveLength(1);
    });
  });

  describe('cross-signing', () => {
    let master: SigningKey;
    let selfSigning: SigningKey;
    let userSigning: SigningKey;
    beforeEach(() => {
      master = generateSigningKey();
      selfSigning = generateSigningKey();
      userSigning = generateSigningKey();
    });

    async function setUp(userId: string, m = master, s = selfSigning, u = userSigning): Promise<void> {
      const r = await keys.performUploadDeviceSigningKeys({
        userId,
        masterKey: crossKey(userId, 'master', m),
        selfSigningKey: crossKey(userId, 'self_signing', s, m),
        userSigningKey: crossKey(userId, 'user_signing', u, m),
      });
      expect(r).toEqual({});
    }

    it('stores keys signed by the master key and serves the user-signing key to its owner only', async () => {
      expect((await keys.queryCrossSigningStatus({ userId: ALICE })).hasMasterKey).toBe(false);
      await setUp(ALICE);
      expect((await keys.queryCrossSigningStatus({ userId: ALICE })).hasMasterKey).toBe(true);
      expect(events.at(-1)).toMatchObject({ type: 'cross_signing', user_id: ALICE, master_key: crossKey(ALICE, 'master', master) });
      const own = await keys.queryKeys({ userId: ALICE, userToDevices: { [ALICE]: [] } });
      expect(own.masterKeys[ALICE]).toEqual(crossKey(ALICE, 'master', master));
      expect(own.selfSigningKeys[ALICE]).toEqual(crossKey(ALICE, 'self_signing', selfSigning, master));
      expect(own.userSigningKeys[ALICE]).toEqual(crossKey(ALICE, 'user_signing', userSigning, master));
      const theirs = await keys.queryKeys({ userId: BOB, userToDevices: { [ALICE]: [] } });
      expect(theirs.masterKeys[ALICE]).toBeDefined();
      expect(theirs.userSigningKeys).toEqual({});
      // A subkey alone later is checked against the stored master key.
      const newSelf = generateSigningKey();
      expect(await keys.performUploadDeviceSigningKeys({ userId: ALICE, selfSigningKey: crossKey(ALICE, 'self_signing', newSelf, master) })).toEqual({});
      expect((await keys.queryKeys({ userId: ALICE, userToDevices: { [ALICE]: [] } })).selfSigningKeys[ALICE]).toEqual(crossKey(ALICE, 'self_signing', newSelf, master));
    });

    it('refuses unsigned or wrongly signed subkeys, keys of other users, malformed keys, and subkeys without a master', async () => {
      const other = generateSigningKey();
      const cases: Array<[string, Parameters<KeyServerImpl['performUploadDeviceSigningKeys']>[0]]> = [
        ['M_INVALID_SIGNATURE', { userId: ALICE, masterKey: crossKey(ALICE, 'master', master), selfSigningKey: crossKey(ALICE, 'self_signing', selfSigning) }],
        ['M_INVALID_SIGNATURE', { userId: ALICE, masterKey: crossKey(ALICE, 'master', master), selfSigningKey: crossKey(ALICE, 'self_signing', selfSigning, other) }],
        ['M_INVALID_PARAM', { userId: ALICE, masterKey: crossKey(BOB, 'master', master) }],
        ['M_INVALID_PARAM', { userId: ALICE, masterKey: crossKey(ALICE, 'self_signing', master) }],
        ['M_INVALID_PARAM', { userId: ALICE, masterKey: { user_id: ALICE, usage: ['master'], keys: { 'ed25519:abc': 'def' } } }],
        ['M_MISSING_PARAM', { userId: ALICE, selfSigningKey: crossKey(ALICE, 'self_signing', selfSigning, master) }],
        ['M_MISSING_PARAM', { userId: ALICE }],
      ];
      for (const [errcode, req] of cases) expect((await keys.performUploadDeviceSigningKeys(req)).error?.errcode).toBe(errcode);
      expect((await keys.queryCrossSigningStatus({ userId: ALICE })).hasMasterKey).toBe(false);
      expect(events).toEqual([]);
    });

    it('accepts signatures by the self-signing key on own devices, by a device on the master key, and by the user-signing key on others', async () => {
      const device = generateSigningKey();
      const a1 = deviceKeys(ALICE, 'A1', device.publicKeyBase64);
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: a1 });
      await setUp(ALICE);
      const bobMaster = generateSigningKey();
      await setUp(BOB, bobMaster, generateSigningKey(), generateSigningKey());

      const signedDevice = signJson(a1, ALICE, `ed25519:${selfSigning.publicKeyBase64}`, selfSigning);
      const signedMaster = signJson(crossKey(ALICE, 'master', master), ALICE, 'ed25519:A1', device);
      const signedBob = signJson(crossKey(BOB, 'master', bobMaster), ALICE, `ed25519:${userSigning.publicKeyBase64}`, userSigning);
      const res = await keys.performUploadDeviceSignatures({
        userId: ALICE,
        signatures: { [ALICE]: { A1: signedDevice, [master.publicKeyBase64]: signedMaster }, [BOB]: { [bobMaster.publicKeyBase64]: signedBob } },
      });
      expect(res.failures).toEqual({});

      const mine = await keys.queryKeys({ userId: ALICE, userToDevices: { [ALICE]: [], [BOB]: [] } });
      expect(mine.deviceKeys[ALICE]!['A1']!['signatures']).toEqual({ [ALICE]: { 'ed25519:A1': 'self', [`ed25519:${selfSigning.publicKeyBase64}`]: expect.any(String) } });
      expect(Object.keys((mine.masterKeys[ALICE]!['signatures'] as Record<string, Record<string, string>>)[ALICE]!)).toEqual(['ed25519:A1']);
      // Alice sees her signature on Bob's master key; a third party does not.
      expect((mine.masterKeys[BOB]!['signatures'] as Record<string, unknown>)[ALICE]).toBeDefined();
      const carolView = await keys.queryKeys({ userId: '@carol:hs', userToDevices: { [BOB]: [] } });
      expect(carolView.masterKeys[BOB]!['signatures']).toBeUndefined();
    });

    it("shows the asker's signature on another server's user's master key in the answer of their server", async () => {
      await setUp(ALICE);
      const DAVE = '@dave:remote';
      const daveMaster = generateSigningKey();
      const theirs = crossKey(DAVE, 'master', daveMaster);
      federation = {
        queryKeys: async () => ({ deviceKeys: { [DAVE]: {} }, masterKeys: { [DAVE]: theirs }, selfSigningKeys: {} }),
        claimKeys: async () => ({}),
      };
      const signed = signJson(theirs, ALICE, `ed25519:${userSigning.publicKeyBase64}`, userSigning);
      expect((await keys.performUploadDeviceSignatures({ userId: ALICE, signatures: { [DAVE]: { [daveMaster.publicKeyBase64]: signed } } })).failures).toEqual({});
      const mine = await keys.queryKeys({ userId: ALICE, userToDevices: { [DAVE]: [] } });
      expect(mine.masterKeys[DAVE]).toEqual(signed);
      const carolView = await keys.queryKeys({ userId: '@carol:hs', userToDevices: { [DAVE]: [] } });
      expect(carolView.masterKeys[DAVE]).toEqual(theirs);
    });

    it('reports bad signatures, unknown devices and keys that are not the stored ones in failures', async () => {
      const device = generateSigningKey();
      const a1 = deviceKeys(ALICE, 'A1', device.publicKeyBase64);
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: a1 });
      await setUp(ALICE);
      const stranger = generateSigningKey();
      const res = await keys.performUploadDeviceSignatures({
        userId: ALICE,
        signatures: {
          [ALICE]: {
            A1: signJson(a1, ALICE, `ed25519:${selfSigning.publicKeyBase64}`, stranger),
            NOPE: signJson(deviceKeys(ALICE, 'NOPE'), ALICE, `ed25519:${selfSigning.publicKeyBase64}`, selfSigning),
            [master.publicKeyBase64]: signJson(crossKey(ALICE, 'master', master), ALICE, 'ed25519:A1', stranger),
          },
          [BOB]: { whatever: signJson(crossKey(BOB, 'master', stranger), ALICE, `ed25519:${userSigning.publicKeyBase64}`, userSigning) },
        },
      });
      expect(res.failures[ALICE]?.['A1']?.errcode).toBe('M_INVALID_SIGNATURE');
      expect(res.failures[ALICE]?.['NOPE']?.errcode).toBe('M_NOT_FOUND');
      expect(res.failures[ALICE]?.[master.publicKeyBase64]?.errcode).toBe('M_INVALID_SIGNATURE');
      expect(res.failures[BOB]?.['whatever']?.errcode).toBe('M_NOT_FOUND');
      expect(await ctx.db().selectFrom('userapi_cross_signing_sigs').selectAll().execute()).toEqual([]);
    });

    it('tells only the owner of a new user-signing key, and only the signer of a signature made with it (Sytest "Changing user-signing key notifies local users")', async () => {
      await setUp(ALICE);
      await setUp(BOB, generateSigningKey(), generateSigningKey(), generateSigningKey());
      const before = (await keys.queryKeyChanges({ fromOffset: 0 })).offset;
      const newUserSigning = generateSigningKey();
      expect(await keys.performUploadDeviceSigningKeys({ userId: ALICE, userSigningKey: crossKey(ALICE, 'user_signing', newUserSigning, master) })).toEqual({});
      const afterKey = await keys.queryKeyChanges({ fromOffset: before });
      expect(afterKey.userIds).toEqual([]);
      expect(afterKey.privateChanges).toEqual([{ userId: ALICE, visibleTo: ALICE }]);
      expect(events.at(-1)).toMatchObject({ type: 'cross_signing', user_id: ALICE, visible_to: ALICE });
      // Alice signs Bob's master key: Alice alone learns that Bob's keys changed.
      const bobMaster = (await keys.queryKeys({ userId: BOB, userToDevices: { [BOB]: [] } })).masterKeys[BOB]!;
      const bobMasterPub = Object.values(bobMaster['keys'] as Record<string, string>)[0]!;
      const signed = signJson(bobMaster, ALICE, `ed25519:${newUserSigning.publicKeyBase64}`, newUserSigning);
      expect((await keys.performUploadDeviceSignatures({ userId: ALICE, signatures: { [BOB]: { [bobMasterPub]: signed } } })).failures).toEqual({});
      const afterSig = await keys.queryKeyChanges({ fromOffset: afterKey.offset });
      expect(afterSig.userIds).toEqual([]);
      expect(afterSig.privateChanges).toEqual([{ userId: BOB, visibleTo: ALICE }]);
      // A public change later still reaches everyone, and the private one stays for its reader.
      await keys.performUploadKeys({ userId: BOB, deviceId: 'B1', deviceKeys: deviceKeys(BOB, 'B1') });
      const all = await keys.queryKeyChanges({ fromOffset: before });
      expect(all.userIds).toEqual([BOB]);
      expect(all.privateChanges).toEqual([{ userId: ALICE, visibleTo: ALICE }, { userId: BOB, visibleTo: ALICE }]);
    });

    it('announces a device its user signed with the self-signing key as a device change carrying the signature (Sytest "uploading signed devices gets propagated over federation")', async () => {
      const device = generateSigningKey();
      const a1 = deviceKeys(ALICE, 'A1', device.publicKeyBase64);
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: a1 });
      await setUp(ALICE);
      const before = events.length;
      const signed = signJson(a1, ALICE, `ed25519:${selfSigning.publicKeyBase64}`, selfSigning);
      expect((await keys.performUploadDeviceSignatures({ userId: ALICE, signatures: { [ALICE]: { A1: signed } } })).failures).toEqual({});
      const deviceChange = events.slice(before).find((e) => e.type === 'device_keys');
      expect(deviceChange).toMatchObject({ user_id: ALICE, device_id: 'A1', display_name: 'phone' });
      expect(((deviceChange!.keys as Record<string, unknown>)['signatures'] as Record<string, Record<string, string>>)[ALICE]).toEqual({
        'ed25519:A1': 'self',
        [`ed25519:${selfSigning.publicKeyBase64}`]: expect.any(String),
      });
      // A public change: other users (and servers) hear of it.
      expect(deviceChange!.visible_to).toBeUndefined();
    });

    it('a new master key drops the signatures made with the old keys', async () => {
      const a1 = deviceKeys(ALICE, 'A1');
      await keys.performUploadKeys({ userId: ALICE, deviceId: 'A1', deviceKeys: a1 });
      await setUp(ALICE);
      await keys.performUploadDeviceSignatures({ userId: ALICE, signatures: { [ALICE]: { A1: signJson(a1, ALICE, `ed25519:${selfSigning.publicKeyBase64}`, selfSigning) } } });
      expect(await ctx.db().selectFrom('userapi_cross_signing_sigs').selectAll().execute()).toHaveLength(1);
      await setUp(ALICE, generateSigningKey(), generateSigningKey(), generateSigningKey());
      expect(await ctx.db().selectFrom('userapi_cross_signing_sigs').selectAll().execute()).toEqual([]);
    });
  });
});
