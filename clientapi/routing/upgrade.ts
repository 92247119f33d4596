/**
 * POST /rooms/{roomId}/upgrade (Client-Server "Room Upgrades"): replaces a room with a new one
 * of another room version, as Synapse and Dendrite do it. The user must be joined and allowed
 * to send m.room.tombstone. The new room's create event names its predecessor (the old room
 * and, where the new room's ID is known in advance, the tombstone); the transferable state is
 * copied, with the upgrading user given the power to set it while the room is made and the old
 * power levels restored last. Then the old room gets its tombstone, its local aliases (and
 * canonical alias) move to the new room, the directory listing moves too, and the old room's
 * power levels are raised so that ordinary members can no longer talk or invite there.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, missingParam, notFound, readJsonObject } from '../../internal/httputil/index.js';
import { isValidUserId, roomVersion as lookupRoomVersion, type JsonObject, type JsonValue } from '../../internal/matrix/index.js';
import type { HeaderedEvent, RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';
import { carryRoomUserData } from './roomuserdata.js';

const MAX_BODY = 16 * 1024;
const TOMBSTONE_BODY = 'This room has been replaced';

/** State (with the empty state key) copied into the new room: the spec's list plus what Synapse copies. */
const TRANSFERABLE = [
  'm.room.server_acl',
  'm.room.encryption',
  'm.room.name',
  'm.room.avatar',
  'm.room.topic',
  'm.room.guest_access',
  'm.room.history_visibility',
  'm.room.join_rules',
] as const;

/** The spec's defaults for the power level keys an event may leave out. */
const PL_DEFAULTS: JsonObject = { users: {}, notifications: {}, users_default: 0, events: {}, events_default: 0, state_default: 50, ban: 50, kick: 50, redact: 50, invite: 0 };

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A power level as an integer (older room versions allow numeric strings); undefined when it is neither. */
function level(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\s*[+-]?\d+\s*$/.test(v)) return Number.parseInt(v, 10);
  return undefined;
}

/** Power level content made valid for any room version: integer levels only. */
function normalisePowerLevels(content: JsonObject): JsonObject {
  const out: JsonObject = {};
  const levels = (m: unknown): JsonObject => {
    const r: JsonObject = {};
    if (!isObject(m)) return r;
    for (const [k, v] of Object.entries(m)) {
      const n = level(v);
      if (n !== undefined) r[k] = n;
    }
    return r;
  };
  for (const [k, v] of Object.entries({ ...PL_DEFAULTS, ...content })) {
    if (k === 'users' || k === 'events' || k === 'notifications') out[k] = levels(v);
    else if (k in PL_DEFAULTS) {
      const n = level(v);
      out[k] = n ?? (PL_DEFAULTS[k] as JsonValue);
    } else out[k] = v as JsonValue;
  }
  return out;
}

const contentOf = (e: HeaderedEvent | undefined): JsonObject => (isObject(e?.pdu.content) ? (e.pdu.content as JsonObject) : {});

export function addUpgradeRoomRoute(client: Hono, serverName: string, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI): void {
  /** Upgrades under way, by user, room and version: a retry waits for the first one's answer (as Synapse does). */
  const inFlight = new Map<string, Promise<string>>();

  const isLocal = (id: string): boolean => id.slice(id.indexOf(':') + 1) === serverName;

  const upgrade = async (userId: string, oldRoomId: string, newVersion: string, additionalCreators: string[]): Promise<string> => {
    const newRv = lookupRoomVersion(newVersion)!;
    const membership = await rsAPI.queryMembershipForUser({ room_id: oldRoomId, user_id: userId });
    if (!membership.room_exists) throw notFound(`Unknown room ${oldRoomId}`);
    if (membership.membership !== 'join') throw forbidden('You are not in the room');

    const old = await rsAPI.queryLatestEventsAndState({ room_id: oldRoomId });
    if (!old.room_exists || old.room_version === undefined) throw notFound(`Unknown room ${oldRoomId}`);
    const oldRv = lookupRoomVersion(old.room_version);
    const state = new Map(old.state_events.map((e) => [`${e.pdu.type}\u0000${e.pdu.state_key ?? ''}`, e]));
    const get = (type: string, stateKey = ''): HeaderedEvent | undefined => state.get(`${type}\u0000${stateKey}`);
    const oldCreate = get('m.room.create');

    // The tombstone, built (and checked against the old room's state) before anything is made.
    // Before room version 12 the new room's ID is chosen here, so the tombstone is the real one
    // and its ID becomes the predecessor's event_id; from 12 on the ID comes from the new create
    // event, so this is only the permission check and the tombstone is sent once the room exists.
    const newRoomId = newRv.roomIdFromCreateEvent ? undefined : `!${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}:${serverName}`;
    const built = await rsAPI.performSendEvent({
      user_id: userId,
      room_id: oldRoomId,
      type: 'm.room.tombstone',
      state_key: '',
      content: { body: TOMBSTONE_BODY, replacement_room: newRoomId ?? oldRoomId },
      build_only: true,
    });
    if (built.error === 'forbidden') throw forbidden(`You may not upgrade this room: ${built.message}`);
    if (built.error !== undefined) throw new MatrixError(400, 'M_UNKNOWN', built.message);
    const prebuilt = newRoomId !== undefined ? built.event : undefined;

    // The create event: the predecessor, and what carries over from the old create event.
    const predecessor: JsonObject = { room_id: oldRoomId };
    const lastEvent = prebuilt !== undefined ? built.event_id : old.latest_event_ids[0];
    if (lastEvent !== undefined) predecessor['event_id'] = lastEvent;
    const creationContent: JsonObject = { predecessor };
    const oldCreateContent = contentOf(oldCreate);
    if (oldCreateContent['m.federate'] === false) creationContent['m.federate'] = false;
    if (typeof oldCreateContent['type'] === 'string') creationContent['type'] = oldCreateContent['type'];
    if (newRv.privilegedCreators && additionalCreators.length > 0) creationContent['additional_creators'] = additionalCreators;

    // Power levels: the old room's, with the upgrading user able to set all of the copied state.
    const oldPl = get('m.room.power_levels');
    let override: JsonObject | undefined;
    let restore: JsonObject | undefined;
    if (oldPl !== undefined) {
      const pl = normalisePowerLevels(contentOf(oldPl));
      const users = { ...(pl['users'] as JsonObject) };
      if (oldRv?.privilegedCreators && !newRv.privilegedCreators && oldCreate !== undefined) {
        // Creators had unlimited power; in the new room they get the highest level there is.
        const top = Math.max(100, ...Object.values(users).map((v) => v as number));
        const oldCreators = [oldCreate.pdu.sender, ...(Array.isArray(oldCreateContent['additional_creators']) ? oldCreateContent['additional_creators'] : [])];
        for (const c of oldCreators) if (typeof c === 'string') users[c] = top;
      }
      if (newRv.privilegedCreators) {
        // The creators' power is unlimited and they may not be listed.
        for (const c of [userId, ...additionalCreators]) delete users[c];
        override = { ...pl, users };
      } else {
        const eventLevels = Object.values(pl['events'] as JsonObject).map((v) => v as number);
        const needed = Math.max(pl['state_default'] as number, pl['ban'] as number, ...eventLevels);
        const mine = (users[userId] as number | undefined) ?? (pl['users_default'] as number);
        override = { ...pl, users };
        if (mine < needed) {
          override = { ...pl, users: { ...users, [userId]: needed } };
          restore = { ...pl, users };
        }
      }
    }

    const initialState: Array<{ type: string; state_key: string; content: JsonObject }> = [];
    for (const type of TRANSFERABLE) {
      const e = get(type);
      if (e !== undefined) initialState.push({ type, state_key: '', content: contentOf(e) });
    }
    // The private preset sets guest access; an old room without it had none.
    if (get('m.room.guest_access') === undefined) initialState.push({ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'forbidden' } });
    // Bans carry over (Synapse does this too); other memberships cannot.
    for (const e of old.state_events) {
      const target = e.pdu.state_key;
      if (e.pdu.type !== 'm.room.member' || typeof target !== 'string' || target === userId || contentOf(e)['membership'] !== 'ban') continue;
      const reason = contentOf(e)['reason'];
      initialState.push({ type: 'm.room.member', state_key: target, content: { membership: 'ban', ...(typeof reason === 'string' ? { reason } : {}) } });
    }
    if (restore !== undefined) initialState.push({ type: 'm.room.power_levels', state_key: '', content: restore });

    const myMember = contentOf(get('m.room.member', userId));
    const creatorProfile: JsonObject = {};
    if (typeof myMember['displayname'] === 'string') creatorProfile['displayname'] = myMember['displayname'];
    if (typeof myMember['avatar_url'] === 'string') creatorProfile['avatar_url'] = myMember['avatar_url'];

    const joinRule = contentOf(get('m.room.join_rules'))['join_rule'];
    const created = await rsAPI.performCreateRoom({
      user_id: userId,
      room_version: newRv.id,
      ...(newRoomId !== undefined ? { room_id: newRoomId } : {}),
      preset: joinRule === 'public' ? 'public_chat' : 'private_chat',
      creation_content: creationContent,
      initial_state: initialState,
      ...(override !== undefined ? { power_level_content_override: override } : {}),
      ...(Object.keys(creatorProfile).length > 0 ? { creator_profile: creatorProfile } : {}),
    });
    if (created.error !== undefined) {
      if (created.error === 'unsupported_room_version') throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', created.message);
      throw new MatrixError(500, 'M_UNKNOWN', `The replacement room could not be created: ${created.message}`);
    }
    const replacement = created.room_id;

    // The tombstone. The prebuilt one goes in as it is; should the room have moved on so that
    // it no longer passes, a fresh one is sent instead.
    let tombstoned = false;
    if (prebuilt !== undefined) {
      const [res] = (await rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: prebuilt, origin: serverName }] })).results;
      tombstoned = res !== undefined && (res.status === 'accepted' || res.status === 'duplicate');
    }
    if (!tombstoned) {
      const sent = await rsAPI.performSendEvent({ user_id: userId, room_id: oldRoomId, type: 'm.room.tombstone', state_key: '', content: { body: TOMBSTONE_BODY, replacement_room: replacement } });
      if (sent.error === 'forbidden') throw forbidden(`The tombstone was refused: ${sent.message}`);
      if (sent.error !== undefined) throw new MatrixError(500, 'M_UNKNOWN', `The tombstone could not be sent: ${sent.message}`);
    }

    // Local aliases move to the new room (the directory would refuse one the user may not remove).
    const { aliases } = await rsAPI.queryAliasesForRoom({ room_id: oldRoomId });
    for (const alias of aliases) {
      if ((await rsAPI.performRemoveRoomAlias({ alias, user_id: userId })).error !== undefined) continue;
      await rsAPI.performSetRoomAlias({ alias, room_id: replacement, user_id: userId });
    }
    // And so do the local aliases of the canonical alias event (Synapse's rule: others stay).
    const canonical = get('m.room.canonical_alias');
    if (canonical !== undefined) {
      const oldContent: JsonObject = { ...contentOf(canonical) };
      const newContent: JsonObject = {};
      const main = oldContent['alias'];
      if (typeof main === 'string' && isLocal(main)) {
        newContent['alias'] = main;
        delete oldContent['alias'];
      }
      const alt = oldContent['alt_aliases'];
      if (Array.isArray(alt)) {
        const moved = alt.filter((a): a is string => typeof a === 'string' && isLocal(a));
        const kept = alt.filter((a) => !(typeof a === 'string' && isLocal(a)));
        if (moved.length > 0) newContent['alt_aliases'] = moved;
        if (kept.length > 0) oldContent['alt_aliases'] = kept;
        else delete oldContent['alt_aliases'];
      }
      // Failures here leave the aliases where they were; the upgrade itself has happened.
      await rsAPI.performSendEvent({ user_id: userId, room_id: oldRoomId, type: 'm.room.canonical_alias', state_key: '', content: oldContent });
      if (Object.keys(newContent).length > 0) await rsAPI.performSendEvent({ user_id: userId, room_id: replacement, type: 'm.room.canonical_alias', state_key: '', content: newContent });
    }

    // A room listed in the directory is replaced there by its successor.
    if ((await rsAPI.queryPublishedRooms({ room_id: oldRoomId })).room_ids.includes(oldRoomId)) {
      await rsAPI.performPublish({ room_id: replacement, visibility: 'public' });
      await rsAPI.performPublish({ room_id: oldRoomId, visibility: 'private' });
    }

    await carryUserData(oldRoomId, replacement);

    // Ordinary members may no longer talk or invite in the old room.
    if (oldPl !== undefined) {
      const [currentPl] = (await rsAPI.queryLatestEventsAndState({ room_id: oldRoomId, state_to_fetch: [{ type: 'm.room.power_levels', state_key: '' }] })).state_events;
      const content: JsonObject = { ...contentOf(currentPl ?? oldPl) };
      const restricted = Math.max(50, (level(content['users_default']) ?? 0) + 1);
      let changed = false;
      for (const key of ['events_default', 'invite']) {
        if ((level(content[key]) ?? 0) < restricted) {
          content[key] = restricted;
          changed = true;
        }
      }
      if (changed) await rsAPI.performSendEvent({ user_id: userId, room_id: oldRoomId, type: 'm.room.power_levels', state_key: '', content });
    }
    return replacement;
  };

  /** The local members' tags and direct-chat entries follow the room (roomuserdata.ts). */
  const carryUserData = async (oldRoomId: string, newRoomId: string): Promise<void> => {
    const { members } = await rsAPI.queryMembershipsForRoom({ room_id: oldRoomId, memberships: ['join'] });
    for (const userId of members.map((m) => m.user_id).filter(isLocal)) {
      try {
        await carryRoomUserData(userAPI, userId, oldRoomId, newRoomId);
      } catch {
        // The upgrade has happened; this user's tags or direct chats stay as they were.
      }
    }
  };

  clientRoute(client, 'post', '/rooms/:roomId/upgrade', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const roomId = c.req.param('roomId') ?? '';
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const newVersion = body['new_version'];
    if (newVersion === undefined || newVersion === null) throw missingParam('new_version is required');
    if (typeof newVersion !== 'string') throw badJson('new_version must be a string');
    if (lookupRoomVersion(newVersion) === undefined) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `room version ${newVersion} is not supported`);
    const extra = body['additional_creators'] ?? [];
    if (!Array.isArray(extra) || !extra.every((u): u is string => typeof u === 'string' && isValidUserId(u))) throw invalidParam('additional_creators must be a list of user IDs');
    if (!roomId.startsWith('!')) throw invalidParam(`${roomId} is not a room ID`);

    const key = `${me.userId}\n${roomId}\n${newVersion}`;
    let running = inFlight.get(key);
    if (running === undefined) {
      running = upgrade(me.userId, roomId, newVersion, [...new Set(extra)].filter((u) => u !== me.userId));
      inFlight.set(key, running);
      void running.then(
        () => inFlight.delete(key),
        () => inFlight.delete(key),
      );
    }
    return jsonResponse({ replacement_room: await running });
  });
}
