/**
 * POST /createRoom: checks the request, then asks the roomserver to build and input the
 * room's first events; sets the requested alias and directory visibility afterwards.
 */
import { randomBytes } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, invalidParam, jsonResponse } from '../../internal/httputil/index.js';
import { isSupportedRoomVersion, roomVersion as lookupRoomVersion, type JsonObject } from '../../internal/matrix/index.js';
import type { Logger } from 'pino';
import type { FederationInternalAPI } from '../../federationapi/api/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { Config } from '../../setup/config/config.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { checkNumbersForRoomVersion, readEventJson } from './eventcontent.js';
import { clientRoute } from './paths.js';
import { remoteInviter } from './remoteinvite.js';
import { parseThreePidInvite, type ThirdPartyInvites, type ThreePidInvite } from './thirdpartyinvite.js';

const MAX_BODY = 256 * 1024;
const PRESETS = ['private_chat', 'public_chat', 'trusted_private_chat'] as const;
type Preset = (typeof PRESETS)[number];
const USER_ID = /^@[^:]+:.+$/;

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badJson(`${key} must be a string`);
  return v;
}

export function addCreateRoomRoute(client: Hono, cfg: Config, userAPI: ClientUserAPI, rsAPI: RoomserverInternalAPI, fedAPI: Pick<FederationInternalAPI, 'performInvite'>, log: Logger, thirdParty?: ThirdPartyInvites): void {
  const serverName = cfg.global.serverName;
  const inviteRemote = remoteInviter(serverName, rsAPI, fedAPI);

  clientRoute(client, 'post', '/createRoom', async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    // Everything in the body that is a number ends up in the room's first events.
    const { body, badNumber } = await readEventJson(c, MAX_BODY);

    const visibility = optionalString(body, 'visibility') ?? 'private';
    if (visibility !== 'public' && visibility !== 'private') throw badJson('visibility must be public or private');
    const presetRaw = optionalString(body, 'preset') ?? (visibility === 'public' ? 'public_chat' : 'private_chat');
    if (!(PRESETS as readonly string[]).includes(presetRaw)) throw badJson(`preset must be one of ${PRESETS.join(', ')}`);
    const preset = presetRaw as Preset;
    const roomVersion = optionalString(body, 'room_version') ?? cfg.roomServer.defaultRoomVersion;
    if (!isSupportedRoomVersion(roomVersion)) throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', `room version ${roomVersion} is not supported`);
    checkNumbersForRoomVersion(badNumber, lookupRoomVersion(roomVersion));
    const name = optionalString(body, 'name');
    const topic = optionalString(body, 'topic');

    const invite = body['invite'] ?? [];
    if (!Array.isArray(invite) || !invite.every((u) => typeof u === 'string' && USER_ID.test(u))) throw invalidParam('invite must be a list of user IDs');
    // 3PID invites: bound ones become invites of their users; unbound ones are stored once the room exists.
    const invite3pidRaw = body['invite_3pid'] ?? [];
    if (!Array.isArray(invite3pidRaw)) throw badJson('invite_3pid must be a list');
    const invites3pid = invite3pidRaw.map((v, i) => {
      if (!isObject(v)) throw badJson(`invite_3pid[${i}] must be an object`);
      return parseThreePidInvite(v, `invite_3pid[${i}].`);
    });
    if (invites3pid.length > 0 && !thirdParty) throw new MatrixError(400, 'M_UNRECOGNIZED', 'Third-party invites are not supported here');
    const creation = body['creation_content'];
    if (creation !== undefined && creation !== null && !isObject(creation)) throw badJson('creation_content must be an object');
    const override = body['power_level_content_override'];
    if (override !== undefined && override !== null && !isObject(override)) throw badJson('power_level_content_override must be an object');
    const isDirect = body['is_direct'];
    if (isDirect !== undefined && typeof isDirect !== 'boolean') throw badJson('is_direct must be true or false');
    const initialStateRaw = body['initial_state'] ?? [];
    if (!Array.isArray(initialStateRaw)) throw badJson('initial_state must be a list');
    const initialState = initialStateRaw.map((s, i) => {
      if (!isObject(s) || typeof s['type'] !== 'string' || !isObject(s['content'])) throw badJson(`initial_state[${i}] needs a type and a content object`);
      if (s['state_key'] !== undefined && typeof s['state_key'] !== 'string') throw badJson(`initial_state[${i}].state_key must be a string`);
      return { type: s['type'], state_key: (s['state_key'] as string | undefined) ?? '', content: s['content'] };
    });

    // The alias is checked before anything is created, and set once the room exists.
    const aliasName = optionalString(body, 'room_alias_name');
    let alias: string | undefined;
    if (aliasName !== undefined) {
      if (aliasName.length === 0 || /[:\s#]/.test(aliasName)) throw invalidParam('room_alias_name may not be empty or contain ":", "#" or whitespace');
      alias = `#${aliasName}:${serverName}`;
      if (alias.length > 255) throw invalidParam('the alias is longer than 255 characters');
      if ((await rsAPI.queryRoomIdForAlias({ alias })).room_id !== undefined) throw new MatrixError(400, 'M_ROOM_IN_USE', `${alias} is taken`);
    }

    const unbound3pid: ThreePidInvite[] = [];
    if (thirdParty) {
      for (const inv of invites3pid) {
        const bound = await thirdParty.lookup(inv);
        if (bound === undefined) unbound3pid.push(inv);
        else if (bound !== me.userId && !invite.includes(bound)) invite.push(bound);
      }
    }

    const { profile } = await userAPI.queryProfile({ userId: me.userId });
    const creatorProfile: JsonObject = {};
    if (profile?.displayName) creatorProfile['displayname'] = profile.displayName;
    if (profile?.avatarUrl) creatorProfile['avatar_url'] = profile.avatarUrl;

    const res = await rsAPI.performCreateRoom({
      user_id: me.userId,
      room_version: roomVersion,
      ...(roomVersion === '12' ? {} : { room_id: `!${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}:${serverName}` }),
      preset,
      ...(isObject(creation) ? { creation_content: creation } : {}),
      initial_state: initialState,
      ...(name !== undefined ? { name } : {}),
      ...(topic !== undefined ? { topic } : {}),
      invite: invite as string[],
      ...(isDirect === true ? { is_direct: true } : {}),
      ...(isObject(override) ? { power_level_content_override: override } : {}),
      ...(alias !== undefined ? { canonical_alias: alias } : {}),
      ...(Object.keys(creatorProfile).length > 0 ? { creator_profile: creatorProfile } : {}),
    });
    if (res.error !== undefined) {
      if (res.error === 'unsupported_room_version') throw new MatrixError(400, 'M_UNSUPPORTED_ROOM_VERSION', res.message);
      throw new MatrixError(400, 'M_INVALID_PARAM', `the room could not be created: ${res.message}`);
    }
    if (alias !== undefined) {
      const set = await rsAPI.performSetRoomAlias({ alias, room_id: res.room_id, user_id: me.userId });
      if (set.error === 'alias_exists') throw new MatrixError(400, 'M_ROOM_IN_USE', `${alias} is taken`);
    }
    if (visibility === 'public') await rsAPI.performPublish({ room_id: res.room_id, visibility: 'public' });
    // Other servers' users: each invite goes to their server to be signed. The room exists
    // whatever they answer (as in Synapse); a refusal is logged, not the caller's failure.
    for (const u of invite as string[]) {
      if (u === me.userId || u.endsWith(`:${serverName}`)) continue;
      try {
        await inviteRemote(me.userId, res.room_id, u, { membership: 'invite', ...(isDirect === true ? { is_direct: true } : {}) });
      } catch (err) {
        log.warn({ err, room_id: res.room_id, invitee: u }, 'createRoom: invite over federation failed');
      }
    }
    if (thirdParty) for (const inv of unbound3pid) await thirdParty.storeAndAnnounce(me.userId, res.room_id, inv);
    return jsonResponse({ room_id: res.room_id });
  });
}
