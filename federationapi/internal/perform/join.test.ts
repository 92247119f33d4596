/**
 * Outbound joins against a scripted resident server: the room version a make_join answer names
 * (or implies) must be the one the room's create event names, else the join fails, quickly and
 * without storing anything (Sytest "Outbound federation rejects m.room.create events with an
 * unknown room version").
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildEvent, generateSigningKey, type Event, type JsonObject } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { InputRoomEventsRequest } from '../../../roomserver/api/index.js';
import type { MakeMembershipResponse, SendJoinResponse } from '../../client/index.js';
import { Joiner, type JoinClient } from './join.js';

const LOCAL = 'hs.test';
const REMOTE = 'remote.test';
const USER = `@joiner:${LOCAL}`;
const CREATOR = `@creator:${REMOTE}`;

const localKey = generateSigningKey();
const remoteKey = generateSigningKey();

const identity: SigningIdentity = {
  serverName: LOCAL,
  keyId: localKey.keyId,
  publicKeyBase64: localKey.publicKeyBase64,
  signJson: (o) => o,
  buildEvent: (fields, version) => buildEvent(fields, version, LOCAL, localKey.keyId, localKey),
  signRequest: () => '',
  signEvent: (pdu) => pdu,
  oldKeys: [],
  keyValidityPeriodMs: 0,
};

/**
 * A remote room: create and the creator's join, built with `buildVersion`'s rules but naming
 * `createVersion` in the create event (as a server of a version we do not know would).
 */
function remoteRoom(buildVersion: string, createVersion: string): { roomId: string; create: Event; join: Event } {
  const roomId = `!r${Math.random().toString(36).slice(2, 10)}:${REMOTE}`;
  const b = (fields: Parameters<typeof buildEvent>[0]): Event => buildEvent(fields, buildVersion, REMOTE, remoteKey.keyId, remoteKey);
  const create = b({ type: 'm.room.create', state_key: '', sender: CREATOR, room_id: roomId, content: { creator: CREATOR, room_version: createVersion }, prev_events: [], auth_events: [], depth: 1 });
  const join = b({ type: 'm.room.member', state_key: CREATOR, sender: CREATOR, room_id: roomId, content: { membership: 'join' }, prev_events: [create.eventId], auth_events: [create.eventId], depth: 2 });
  return { roomId, create, join };
}

function setup(room: { roomId: string; create: Event; join: Event }, makeJoinVersion: string | undefined) {
  const calls = { sendJoin: 0, input: [] as InputRoomEventsRequest[] };
  const client: JoinClient = {
    makeJoin: async (): Promise<MakeMembershipResponse> => ({
      event: {
        type: 'm.room.member',
        state_key: USER,
        sender: USER,
        room_id: room.roomId,
        content: { membership: 'join' },
        prev_events: [room.join.eventId],
        auth_events: [room.create.eventId, room.join.eventId],
        depth: 3,
      },
      ...(makeJoinVersion !== undefined ? { room_version: makeJoinVersion } : {}),
    }),
    sendJoin: async (): Promise<SendJoinResponse> => {
      calls.sendJoin++;
      const pdus = [room.create.json, room.join.json] as unknown as JsonObject[];
      return { origin: REMOTE, state: pdus, auth_chain: pdus };
    },
    queryDirectory: async () => {
      throw new Error('no directory here');
    },
  };
  const joiner = new Joiner({
    identity,
    client,
    keys: {
      ensure: async () => {},
      keyLookup: (server, keyId) => (server === REMOTE && keyId === remoteKey.keyId ? remoteKey.publicKeyBase64 : server === LOCAL && keyId === localKey.keyId ? localKey.publicKeyBase64 : undefined),
    },
    rsAPI: {
      inputRoomEvents: async (req) => {
        calls.input.push(req);
        return { results: req.events.map((e) => ({ event_id: String(e.event.pdu.event_id ?? ''), status: 'accepted' as const })) };
      },
      queryMembershipForUser: async () => ({ membership: 'leave' }) as never,
    },
    log: pino({ level: 'silent' }),
  });
  return { joiner, calls };
}

describe('outbound join: the room version', () => {
  it('a create event naming an unknown room version fails the join after send_join, storing nothing', async () => {
    // As Sytest's fake server: no room_version in make_join, v4-style event IDs, the create event
    // naming a version nobody knows.
    const room = remoteRoom('4', 'sytest-room-ver');
    const { joiner, calls } = setup(room, undefined);
    const res = await joiner.join({ room_id_or_alias: room.roomId, user_id: USER, server_names: [] });
    expect(calls.sendJoin).toBe(1);
    expect(res).toMatchObject({ error: 'incompatible_room_version', room_version: 'sytest-room-ver' });
    expect(calls.input).toEqual([]);
  });

  it('a create event naming another known version than make_join fails the join', async () => {
    const room = remoteRoom('10', '11');
    const { joiner, calls } = setup(room, '10');
    const res = await joiner.join({ room_id_or_alias: room.roomId, user_id: USER, server_names: [] });
    expect(calls.sendJoin).toBe(1);
    expect(res).toMatchObject({ error: 'failed' });
    expect((res as { message: string }).message).toMatch(/room version 11, not 10/);
    expect(calls.input).toEqual([]);
  });

  it('a make_join without room_version but with plain event IDs joins by the create event\'s version', async () => {
    const room = remoteRoom('4', '4');
    const { joiner, calls } = setup(room, undefined);
    const res = await joiner.join({ room_id_or_alias: room.roomId, user_id: USER, server_names: [] });
    expect(res).toEqual({ room_id: room.roomId });
    expect(calls.input).toHaveLength(2);
    expect(calls.input[1]!.events[0]!.event.room_version).toBe('4');
  });

  it('matching versions join', async () => {
    const room = remoteRoom('10', '10');
    const { joiner, calls } = setup(room, '10');
    expect(await joiner.join({ room_id_or_alias: room.roomId, user_id: USER, server_names: [] })).toEqual({ room_id: room.roomId });
    expect(calls.input.map((r) => r.events.map((e) => e.kind))).toEqual([['outlier', 'outlier'], ['new']]);
  });
});
