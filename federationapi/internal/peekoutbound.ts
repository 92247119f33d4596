/**
 * Our peeks into other servers' rooms (MSC2444), asked for by the roomserver when a local device
 * peeks a room this server is not in.
 *
 * - A peek PUTs /peek/{roomId}/{peekId} on a server of the room (in turn, until one answers),
 *   checks the answer as a send_join answer is checked (every event's signatures and hashes, all
 *   of the room, a create event among them) and hands the roomserver the auth chain and state
 *   as outliers, then the latest event with that state: the room is then held here, and the
 *   events the peeked server sends us through /send go in like any room's.
 * - A live peek (renewed within its interval) is not made again.
 * - A timer renews each peek once `outboundRenewAtFraction` of its interval has passed. An
 *   answer with state means the peeked server had let the peek lapse: the state goes in again
 *   (it bridges what we missed). A refusal (403/404) ends the peek; other failures are retried
 *   at the next check.
 * - Unpeek (the roomserver: no local device peeks the room any more) ends the room's peeks and
 *   DELETEs them on the peeked servers, in the background.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { peekTiming } from '../../internal/peektiming.js';
import { Event, allRoomVersions, roomVersion as lookupRoomVersion, type PDUJson } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { PerformOutboundPeekRequest, PerformOutboundPeekResponse, PerformOutboundUnpeekRequest, PerformOutboundUnpeekResponse } from '../api/index.js';
import { FederationHttpError, encodePathSegment, type FederationClient } from '../client/index.js';
import type { FederationPeekStore } from '../storage/peeks.js';
import { authOrder } from './authorder.js';
import { checkPDUs, type PDUKeys } from './pdus.js';

type Failure = Exclude<PerformOutboundPeekResponse, { error?: undefined }>;

/** Why a peek failed, said by the peeked server: no other server would say otherwise. */
class Refused extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export const peekPath = (roomId: string, peekId: string): string => `/_matrix/federation/v1/peek/${encodePathSegment(roomId)}/${encodePathSegment(peekId)}`;

export class OutboundPeeker {
  private timer: NodeJS.Timeout | undefined;
  private renewing = false;

  constructor(
    private readonly d: {
      serverName: string;
      client: Pick<FederationClient, 'request'>;
      keys: PDUKeys;
      rsAPI: Pick<RoomserverInternalAPI, 'inputRoomEvents'>;
      store: FederationPeekStore;
      log: Logger;
    },
  ) {}

  async peek(req: PerformOutboundPeekRequest): Promise<PerformOutboundPeekResponse> {
    const now = Date.now();
    const existing = await this.d.store.ofRoom('outbound', req.room_id);
    if (existing.some((p) => now < p.renewedTs + p.renewalIntervalMs)) return { fresh: false };
    const candidates = [...new Set(req.server_names)].filter((s) => s !== this.d.serverName);
    let last: Failure = { error: 'not_found', message: 'No server to peek the room through' };
    for (const server of candidates) {
      // A lapsed peek through this server is made again under its ID (the server may still hold it).
      const peekId = existing.find((p) => p.serverName === server)?.peekId ?? newPeekId();
      try {
        return { fresh: (await this.peekVia(server, req.room_id, peekId)) === 'fetched' };
      } catch (err) {
        last = err instanceof Refused ? err.failure : failureOf(server, err);
        this.d.log.info({ server, room_id: req.room_id, error: last.message }, 'federation: peek via server failed');
        if (last.error === 'forbidden' || last.error === 'incompatible_room_version' || last.error === 'remote') return last;
      }
    }
    return last;
  }

  async unpeek(req: PerformOutboundUnpeekRequest): Promise<PerformOutboundUnpeekResponse> {
    const peeks = await this.d.store.removeRoom('outbound', req.room_id);
    for (const p of peeks) {
      // The peeked server evicts a peek we stop renewing anyway: a failed DELETE only costs it some sends.
      void this.d.client.request(p.serverName, 'DELETE', peekPath(p.roomId, p.peekId), { body: {} }).then(
        (res) => {
          if (res.status !== 200 && res.status !== 404) this.d.log.info({ server: p.serverName, room_id: p.roomId, status: res.status }, 'federation: unpeek refused');
        },
        (err: unknown) => this.d.log.info({ err, server: p.serverName, room_id: p.roomId }, 'federation: unpeek not delivered'),
      );
    }
    return { ended: peeks.length > 0 };
  }

  /** Renews the peeks that are due now. */
  async renewDue(now = Date.now()): Promise<void> {
    for (const p of await this.d.store.all('outbound')) {
      if (now < p.renewedTs + p.renewalIntervalMs * peekTiming.outboundRenewAtFraction) continue;
      try {
        await this.peekVia(p.serverName, p.roomId, p.peekId);
      } catch (err) {
        const refused = err instanceof Refused || (err instanceof FederationHttpError && (err.status === 403 || err.status === 404));
        if (refused) {
          // The room is no longer ours to peek (no longer world_readable, say): the peek ends.
          await this.d.store.remove('outbound', p.serverName, p.roomId, p.peekId);
          this.d.log.info({ server: p.serverName, room_id: p.roomId, error: err instanceof Error ? err.message : String(err) }, 'federation: peek renewal refused; the peek ended');
        } else {
          this.d.log.info({ server: p.serverName, room_id: p.roomId, error: err instanceof Error ? err.message : String(err) }, 'federation: peek renewal failed; retrying later');
        }
      }
    }
  }

  /** Starts renewing; returns what stops it. */
  start(): () => void {
    this.timer = setInterval(() => {
      if (this.renewing) return;
      this.renewing = true;
      this.renewDue()
        .catch((err: unknown) => this.d.log.error({ err }, 'federation: peek renewals failed'))
        .finally(() => (this.renewing = false));
    }, peekTiming.outboundCheckMs);
    this.timer.unref();
    return () => clearInterval(this.timer);
  }

  /** PUTs the peek; `renewed`: the server kept it (nothing to take in), `fetched`: its state went into the roomserver. */
  private async peekVia(server: string, roomId: string, peekId: string): Promise<'renewed' | 'fetched'> {
    const res = await this.d.client.request(server, 'PUT', peekPath(roomId, peekId), { query: { ver: allRoomVersions().map((v) => v.id) }, body: {} });
    if (res.status !== 200) throw new FederationHttpError(server, res.status, res.body);
    const body = isObject(res.body) ? res.body : {};
    const interval = typeof body['renewal_interval'] === 'number' && body['renewal_interval'] > 0 ? body['renewal_interval'] : undefined;
    if (body['state'] === undefined && body['latest_event'] === undefined) {
      // A renewal: the peek lives on at its interval (or the one the server now names).
      const known = await this.d.store.get('outbound', server, roomId, peekId);
      if (!known) throw new Refused({ error: 'failed', message: `${server} answered a new peek as a renewal` });
      await this.d.store.renew('outbound', server, roomId, peekId, interval ?? known.renewalIntervalMs);
      return 'renewed';
    }
    if (interval === undefined) throw new Refused({ error: 'failed', message: `${server} named no renewal_interval` });
    await this.takeIn(server, roomId, body);
    await this.d.store.add('outbound', server, roomId, peekId, interval);
    return 'fetched';
  }

  /** Checks a peek answer and gives its state and latest event to the roomserver. */
  private async takeIn(server: string, roomId: string, body: Record<string, unknown>): Promise<void> {
    const version = typeof body['room_version'] === 'string' ? body['room_version'] : '1';
    const rv = lookupRoomVersion(version);
    if (!rv) throw new Refused({ error: 'incompatible_room_version', message: `${server} peeked a room of version ${version}, unknown here` });
    const stateRaw = Array.isArray(body['state']) ? body['state'] : [];
    const chainRaw = Array.isArray(body['auth_chain']) ? body['auth_chain'] : [];
    const [latestChecked, ...checked] = await checkPDUs([body['latest_event'], ...stateRaw, ...chainRaw], rv.id, this.d.keys);
    if (!latestChecked?.ok || latestChecked.event.roomId !== roomId) throw new Refused({ error: 'failed', message: `${server} sent no valid latest event of the room` });
    const latest = latestChecked.event;
    const good = new Map<string, Event>();
    let dropped = 0;
    for (const c of checked) {
      if (c.ok && c.event.roomId === roomId) good.set(c.event.eventId, c.event);
      else dropped++;
    }
    if (dropped > 0) this.d.log.warn({ server, room_id: roomId, dropped }, 'federation: peek answer held events that failed their checks');
    if (![...good.values()].some((e) => e.type === 'm.room.create')) throw new Refused({ error: 'failed', message: `${server} sent no create event` });
    const stateIds = new Set<string>();
    checked.slice(0, stateRaw.length).forEach((c) => {
      if (c.ok && c.event.roomId === roomId && c.event.stateKey !== undefined) stateIds.add(c.event.eventId);
    });

    const stored = await this.d.rsAPI.inputRoomEvents({
      events: authOrder([...good.values()]).map((e) => ({ kind: 'outlier' as const, event: { room_version: rv.id, pdu: e.json as PDUJson }, origin: server })),
    });
    const failed = stored.results.filter((r) => r.status === 'error');
    if (failed.length > 0) this.d.log.warn({ server, room_id: roomId, failed: failed.length, first: failed[0]?.error }, 'federation: some state of the peeked room could not be stored');
    const [result] = (
      await this.d.rsAPI.inputRoomEvents({ events: [{ kind: 'new', event: { room_version: rv.id, pdu: latest.json as PDUJson }, origin: server, state_event_ids: [...stateIds] }] })
    ).results;
    if (!result || (result.status !== 'accepted' && result.status !== 'duplicate')) {
      throw new Refused({ error: 'failed', message: `The peeked room's state could not be stored: ${result?.error ?? result?.status ?? 'no result'}` });
    }
  }
}

/** MSC2444: 8 bytes of ASCII at most, unique per (us, room, peeked server). */
function newPeekId(): string {
  return randomBytes(6).toString('base64url');
}

function failureOf(server: string, err: unknown): Failure {
  if (err instanceof FederationHttpError) {
    if (err.status === 403) return { error: 'forbidden', message: `${server}: ${err.error ?? 'peeking refused'}` };
    if (err.status === 404) return { error: 'not_found', message: `${server}: ${err.error ?? 'room not found'}` };
    if (err.errcode === 'M_INCOMPATIBLE_ROOM_VERSION') return { error: 'incompatible_room_version', message: `${server}: ${err.error ?? 'incompatible room version'}` };
    if (err.status >= 400 && err.status < 500) return { error: 'remote', message: err.error ?? err.message, status: err.status, ...(err.errcode ? { errcode: err.errcode } : {}) };
  }
  return { error: 'unreachable', message: `${server}: ${err instanceof Error ? err.message : String(err)}` };
}
