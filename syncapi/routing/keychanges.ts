/**
 * GET /keys/changes?from=&to=: the users whose device lists changed between two sync tokens,
 * among those who share a room with the requester (and the requester), as /sync's
 * device_lists.changed would have said. Users who stopped sharing a room in between are `left`.
 */
import type { Hono } from 'hono';
import { authenticate, clientRoute, invalidParam, jsonResponse, missingParam, type TokenResolver } from '../../internal/httputil/index.js';
import type { AuthenticatedDevice, ClientUserAPI } from '../../userapi/api/index.js';
import { roomMates } from '../consumers/ephemeral.js';
import { parseToken } from '../internal/token.js';
import type { SyncStore } from '../storage/syncstore.js';

export function addKeyChangesRoute(client: Hono, store: SyncStore, userAPI: TokenResolver<AuthenticatedDevice> & Pick<ClientUserAPI, 'queryKeyChanges'>): void {
  clientRoute(client, 'get', '/keys/changes', async (c) => {
    const device = await authenticate(c, userAPI, { allowGuests: true });
    const fromRaw = c.req.query('from');
    const toRaw = c.req.query('to');
    if (fromRaw === undefined || toRaw === undefined) throw missingParam('from and to are required');
    const from = parseToken(fromRaw);
    const to = parseToken(toRaw);
    if (!from || !to) throw invalidParam('from and to must be sync tokens from this server');
    const mates = await roomMates(store, device.userId);
    const changed = new Set<string>();
    if (to.deviceList > from.deviceList) {
      const { userIds } = await userAPI.queryKeyChanges({ fromOffset: from.deviceList, toOffset: to.deviceList });
      for (const u of userIds) if (mates.has(u)) changed.add(u);
    }
    // Users who came to share a room in the range: their devices are news too.
    const rooms = (await store.roomsWithMembership(device.userId, ['join'])).map((r) => r.roomId);
    for (const u of await store.joinsInRange(rooms, from.pdu, to.pdu)) if (u !== device.userId) changed.add(u);
    // Users whose membership changed in the range and who share no room now have left.
    const left = new Set<string>();
    for (const e of await store.membershipChangesInRoomsOf(device.userId, from.pdu, to.pdu)) if (!mates.has(e)) left.add(e);
    return jsonResponse({ changed: [...changed], left: [...left].filter((u) => u !== device.userId) });
  });
}
