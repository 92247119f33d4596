/**
 * Peeking over federation (MSC2444): PUT and DELETE /_matrix/federation/v1/peek/{roomId}/{peekId}.
 *
 * PUT, X-Matrix authenticated, body `{}` (a placeholder for filters; any object is taken),
 * `?ver=` the room versions the peeker knows (as for make_join: ["1"] when none):
 * - a live peek of the origin (same room and peek ID) is renewed: `{}`;
 * - otherwise the roomserver answers the room's current state, its auth chain and the latest
 *   event, and federationapi sends the origin the room's events from there on:
 *   `{room_version, state, auth_chain, latest_event, latest_event_id, renewal_interval}`
 *   (`latest_event` as Dendrite sends it, `latest_event_id` as the MSC names it);
 * - 404 M_NOT_FOUND for a room we do not hold; 403 M_FORBIDDEN for one whose history is not
 *   world_readable (or that is encrypted, or whose ACL bars the origin); 400
 *   M_INCOMPATIBLE_ROOM_VERSION when the peeker does not know the room's version.
 * The peeker must PUT again within `renewal_interval` ms, else the peek is evicted.
 *
 * DELETE ends the origin's peek: `{}`, or 404 when there was none.
 * With msc2444 off both answer 404 M_UNRECOGNIZED.
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, forbidden, invalidParam, jsonResponse, notFound, unrecognized } from '../../internal/httputil/index.js';
import { Event, type JsonObject } from '../../internal/matrix/index.js';
import { peekTiming } from '../../internal/peektiming.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { FederationPeekStore } from '../storage/peeks.js';
import type { RoomReader } from './events.js';
import type { FederationAuth } from './fedauth.js';

const ROOM_ID = /^![^:]+(:.+)?$/;
/** MSC2444 asks for 8 bytes; peers (Dendrite) send the room ID. Bounded all the same. */
const MAX_PEEK_ID = 255;
/**
 * Peeks one server may hold here at once: each new one costs a state and auth chain read, and
 * a row until it lapses. Beyond it, 429 (which MSC2444 allows under load).
 */
const MAX_PEEKS_PER_SERVER = 1000;

export interface PeekRouteDeps {
  /** msc2444 is in mscs.mscs. */
  enabled: boolean;
  reader: RoomReader;
  rsAPI: Pick<RoomserverInternalAPI, 'performInboundPeek' | 'queryLatestEventsAndState'>;
  store: FederationPeekStore;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function addPeekRoutes(fed: Hono, auth: FederationAuth, d: PeekRouteDeps): void {
  const target = (c: Context): { roomId: string; peekId: string } => {
    const roomId = c.req.param('roomId') ?? '';
    const peekId = c.req.param('peekId') ?? '';
    if (!ROOM_ID.test(roomId)) throw invalidParam(`${roomId} is not a room ID`);
    if (peekId.length === 0 || peekId.length > MAX_PEEK_ID || !/^[\x21-\x7e]+$/.test(peekId)) throw invalidParam(`The peek ID must be 1 to ${MAX_PEEK_ID} printable ASCII characters`);
    return { roomId, peekId };
  };
  const requireEnabled = (): void => {
    if (!d.enabled) throw unrecognized('Peeking over federation (MSC2444) is not enabled on this server');
  };

  /** Whether the room may still be peeked into; the refusal otherwise. */
  const stillPeekable = async (roomId: string): Promise<string | undefined> => {
    const res = await d.rsAPI.queryLatestEventsAndState({
      room_id: roomId,
      state_to_fetch: [
        { type: 'm.room.history_visibility', state_key: '' },
        { type: 'm.room.encryption', state_key: '' },
      ],
    });
    if (res.state_events.find((e) => e.pdu.type === 'm.room.history_visibility')?.pdu.content['history_visibility'] !== 'world_readable') return 'The room is not world_readable';
    if (res.state_events.some((e) => e.pdu.type === 'm.room.encryption')) return 'Encrypted rooms cannot be peeked into';
    return undefined;
  };

  fed.put('/v1/peek/:roomId/:peekId', async (c) => {
    requireEnabled();
    const { origin, body } = await auth.authenticate(c);
    if (body !== undefined && !isObject(body)) throw badJson('The body must be a JSON object');
    const { roomId, peekId } = target(c);
    const { roomVersion } = await d.reader.requireRoomAccess(roomId, origin);
    const versions = c.req.queries('ver') ?? ['1'];
    if (!versions.includes(roomVersion)) throw new MatrixError(400, 'M_INCOMPATIBLE_ROOM_VERSION', `The room is of version ${roomVersion}, which the peeking server does not know`, { room_version: roomVersion });

    const now = Date.now();
    const existing = await d.store.get('inbound', origin, roomId, peekId);
    if (existing && now <= existing.renewedTs + existing.renewalIntervalMs + peekTiming.inboundEvictionGraceMs) {
      const refused = await stillPeekable(roomId);
      if (refused) {
        await d.store.remove('inbound', origin, roomId, peekId);
        throw forbidden(refused);
      }
      await d.store.renew('inbound', origin, roomId, peekId, peekTiming.inboundRenewalIntervalMs, now);
      return jsonResponse({});
    }

    if ((await d.store.countOf('inbound', origin)) >= MAX_PEEKS_PER_SERVER) throw new MatrixError(429, 'M_LIMIT_EXCEEDED', `A server may peek at most ${MAX_PEEKS_PER_SERVER} rooms here at once`);
    const interval = peekTiming.inboundRenewalIntervalMs;
    const res = await d.rsAPI.performInboundPeek({ room_id: roomId, peek_id: peekId, server_name: origin, renewal_interval: interval });
    if (!res.room_exists) throw notFound(`Room ${roomId} is not known here`);
    if (res.error !== undefined) throw forbidden(res.message);
    const pdu = (h: { pdu: unknown }): JsonObject => h.pdu as JsonObject;
    return jsonResponse({
      room_version: res.room_version,
      state: res.state_events.map(pdu),
      auth_chain: res.auth_chain_events.map(pdu),
      latest_event: pdu(res.latest_event),
      latest_event_id: Event.fromPDU(res.latest_event.pdu, res.latest_event.room_version).eventId,
      renewal_interval: interval,
    });
  });

  fed.delete('/v1/peek/:roomId/:peekId', async (c) => {
    requireEnabled();
    const { origin } = await auth.authenticate(c);
    const { roomId, peekId } = target(c);
    if (!(await d.store.remove('inbound', origin, roomId, peekId))) throw notFound('No such peek');
    return jsonResponse({});
  });
}
