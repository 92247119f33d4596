/**
 * Joining a room held by other servers (Server-Server API "Joining Rooms"): ask a resident
 * server for a join template (make_join), fill it in and sign it, send it (send_join), check
 * every event of the answer (signatures, hashes, room), and hand the roomserver the auth
 * chain and state as outliers, then the join with that state. Servers are tried in turn.
 */
import type { Logger } from 'pino';
import { Event, allRoomVersions, domainOf, roomVersion as lookupRoomVersion, type JsonObject, type PDUJson } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { InputRoomEvent, RoomserverInternalAPI } from '../../../roomserver/api/index.js';
import type { PerformJoinRequest, PerformJoinResponse } from '../../api/index.js';
import { FederationHttpError, type FederationClient } from '../../client/index.js';
import { authOrder } from '../authorder.js';
import { checkPDUs, type PDUKeys } from '../pdus.js';

export type JoinClient = Pick<FederationClient, 'makeJoin' | 'sendJoin' | 'queryDirectory'>;

export class Joiner {
  constructor(
    private readonly deps: {
      identity: SigningIdentity;
      client: JoinClient;
      keys: PDUKeys;
      rsAPI: Pick<RoomserverInternalAPI, 'inputRoomEvents' | 'queryMembershipForUser'>;
      log: Logger;
    },
  ) {}

  async join(req: PerformJoinRequest): Promise<PerformJoinResponse> {
    let roomId = req.room_id_or_alias;
    const servers: string[] = [];
    if (roomId.startsWith('#')) {
      const aliasServer = domainOf(roomId);
      if (aliasServer === undefined) return { error: 'not_found', message: `${roomId} is not a room alias` };
      try {
        const dir = await this.deps.client.queryDirectory(aliasServer, roomId);
        roomId = dir.room_id;
        servers.push(...(Array.isArray(dir.servers) ? dir.servers : []));
      } catch (err) {
        if (err instanceof FederationHttpError && err.status === 404) return { error: 'not_found', message: `No room has the alias ${roomId}` };
        return { error: 'unreachable', message: `Cannot look up ${roomId}: ${err instanceof Error ? err.message : String(err)}` };
      }
    }
    servers.push(...req.server_names);
    // Room IDs name their creating server before room version 12.
    const m = /^![^:]+:(.+)$/.exec(roomId);
    if (m) servers.push(m[1]!);
    const candidates = [...new Set(servers)].filter((s) => s !== this.deps.identity.serverName);
    if (candidates.length === 0) return { error: 'not_found', message: 'No server to join the room through' };

    let last: Exclude<PerformJoinResponse, { room_id: string }> = { error: 'unreachable', message: 'No server answered' };
    for (const server of candidates) {
      try {
        return await this.joinVia(server, roomId, req);
      } catch (err) {
        last = this.failure(server, err);
        this.deps.log.info({ server, roomId, error: last.message }, 'federation: join via server failed');
        // A refusal from a resident is the room's answer; other servers would say the same.
        if (last.error === 'forbidden' || last.error === 'incompatible_room_version' || last.error === 'remote') return last;
      }
    }
    return last;
  }

  private failure(server: string, err: unknown): Exclude<PerformJoinResponse, { room_id: string }> {
    if (err instanceof FederationHttpError) {
      if (err.status === 403) return { error: 'forbidden', message: `${server}: ${err.error ?? 'forbidden'}` };
      if (err.status === 404) return { error: 'not_found', message: `${server}: ${err.error ?? 'room not found'}` };
      if (err.errcode === 'M_INCOMPATIBLE_ROOM_VERSION') {
        const v = (err.body as { room_version?: unknown } | undefined)?.room_version;
        return { error: 'incompatible_room_version', message: `${server}: ${err.error ?? 'incompatible room version'}`, ...(typeof v === 'string' ? { room_version: v } : {}) };
      }
      if (err.status >= 400 && err.status < 500) return { error: 'remote', message: err.error ?? err.message, status: err.status, ...(err.errcode ? { errcode: err.errcode } : {}) };
    }
    return { error: 'unreachable', message: `${server}: ${err instanceof Error ? err.message : String(err)}` };
  }

  private async joinVia(server: string, roomId: string, req: PerformJoinRequest): Promise<PerformJoinResponse> {
    const made = await this.deps.client.makeJoin(server, roomId, req.user_id, allRoomVersions().map((v) => v.id));
    const t = made.event;
    const version = typeof made.room_version === 'string' ? made.room_version : versionOfTemplate(t);
    const rv = lookupRoomVersion(version);
    if (!rv) return { error: 'incompatible_room_version', message: `${server} offered room version ${version}`, room_version: version };
    if (t['type'] !== 'm.room.member' || t['state_key'] !== req.user_id || t['sender'] !== req.user_id) return { error: 'failed', message: `${server} sent a template for another event` };
    const prev = Array.isArray(t['prev_events']) ? (t['prev_events'] as string[]) : [];
    const auth = Array.isArray(t['auth_events']) ? (t['auth_events'] as string[]) : [];
    const templateContent = typeof t['content'] === 'object' && t['content'] !== null ? (t['content'] as JsonObject) : {};
    const content: JsonObject = { ...(req.content ?? {}), ...(typeof templateContent['join_authorised_via_users_server'] === 'string' ? { join_authorised_via_users_server: templateContent['join_authorised_via_users_server'] } : {}), membership: 'join' };
    const join = this.deps.identity.buildEvent(
      { type: 'm.room.member', state_key: req.user_id, sender: req.user_id, room_id: roomId, content, prev_events: prev, auth_events: auth, depth: typeof t['depth'] === 'number' ? t['depth'] : 1 },
      rv.id,
    );
    const answer = await this.deps.client.sendJoin(server, roomId, join.eventId, join.json as unknown as JsonObject);

    // Restricted joins come back signed by the resident too; that copy is the one to keep.
    let joinEvent = join;
    if (typeof answer['event'] === 'object' && answer['event'] !== null) {
      const [signed] = await checkPDUs([answer['event']], rv.id, this.deps.keys);
      if (signed?.ok && signed.event.eventId === join.eventId) joinEvent = signed.event;
    }
    const stateRaw = Array.isArray(answer.state) ? answer.state : [];
    const chainRaw = Array.isArray(answer.auth_chain) ? answer.auth_chain : [];
    const checked = await checkPDUs([...stateRaw, ...chainRaw], rv.id, this.deps.keys);
    const good = new Map<string, Event>();
    let dropped = 0;
    for (const c of checked) {
      if (c.ok && c.event.roomId === roomId) good.set(c.event.eventId, c.event);
      else dropped++;
    }
    if (dropped > 0) this.deps.log.warn({ server, roomId, dropped }, 'federation: send_join answer held events that failed their checks');
    const stateIds = new Set<string>();
    for (const c of checked.slice(0, stateRaw.length)) if (c.ok && c.event.roomId === roomId && c.event.stateKey !== undefined) stateIds.add(c.event.eventId);
    const create = [...good.values()].find((e) => e.type === 'm.room.create' && e.stateKey === '');
    if (!create) return { error: 'failed', message: `${server} sent no create event` };
    // The create event fixes the room's version; one other than the version we joined with (or
    // one we do not know) means the room is not what make_join said, and nothing of it is kept.
    const createVersion = create.content['room_version'] ?? '1';
    if (createVersion !== rv.id) {
      const named = typeof createVersion === 'string' ? createVersion : JSON.stringify(createVersion);
      if (typeof createVersion !== 'string' || !lookupRoomVersion(createVersion)) {
        return { error: 'incompatible_room_version', message: `${server}: the room's create event names room version ${named}, which this server does not support`, room_version: named };
      }
      return { error: 'failed', message: `${server}: the room's create event names room version ${named}, not ${rv.id} as make_join said` };
    }

    const outliers: InputRoomEvent[] = authOrder([...good.values()]).map((e) => ({ kind: 'outlier', event: { room_version: rv.id, pdu: e.json as PDUJson }, origin: server }));
    const stored = await this.deps.rsAPI.inputRoomEvents({ events: outliers });
    const failed = stored.results.filter((r) => r.status === 'error');
    if (failed.length > 0) this.deps.log.warn({ server, roomId, failed: failed.length, first: failed[0]?.error }, 'federation: some state of the joined room could not be stored');
    const [result] = (
      await this.deps.rsAPI.inputRoomEvents({
        events: [{ kind: 'new', event: { room_version: rv.id, pdu: joinEvent.json as PDUJson }, origin: this.deps.identity.serverName, state_event_ids: [...stateIds] }],
      })
    ).results;
    if (!result || (result.status !== 'accepted' && result.status !== 'duplicate')) {
      return { error: 'failed', message: `The join could not be stored: ${result?.error ?? result?.status ?? 'no result'}` };
    }
    return { room_id: roomId };
  }
}

/**
 * The room version of a make_join answer that names none. The spec says to assume "1" or "2"
 * then, whose templates cite events as [event ID, hashes] pairs; a template citing plain event
 * IDs cannot be of those versions, so the ID format says which family it is (v3: standard
 * base64 IDs; v4 and later: URL-safe ones). The create event in the send_join answer then
 * confirms the version, or the join fails (see joinVia).
 */
function versionOfTemplate(template: JsonObject): string {
  const refs = [template['prev_events'], template['auth_events']].flatMap((r) => (Array.isArray(r) ? r : []));
  const ids = refs.filter((r): r is string => typeof r === 'string');
  if (ids.length === 0) return '1';
  return ids.some((id) => /[+/]/.test(id)) ? '3' : '4';
}
