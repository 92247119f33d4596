/**
 * GET /keys/changes?from=&to=: the users whose device lists changed between two sync tokens,
 * among those who share a room with the requester (and the requester), as /sync's
 * device_lists.changed would have said. Users who stopped sharing a room in between are `left`.
 */
import type { Hono } from 'hono';
import { authenticate, clientRoute, invalidParam, jsonResponse, missingParam, type TokenResolver } from '../../internal/httputil/index.js';
import type { AuthenticatedDevice, ClientUserAPI } from '../../userapi/api/index.js';
import { roomMates } from '../consumers/ephemeral.js';
import { contentOf } from '../internal/clientevent.js';
import { parseToken } from '../internal/token.js';
import type { SyncStore } from '../storage/syncstore.js';

/**
 * Users who share no room with `userId` any more after position `from` (up to `to`): those
 * whose own membership changed in a room of the user's, and the members of rooms the user left
 * in the range. `mates` are the user's room-mates now (and the user).
 */
export async function usersNoLongerShared(store: SyncStore, userId: string, from: number, to: number, mates: ReadonlySet<string>): Promise<string[]> {
  if (to <= from) return [];
  const candidates = new Set(await store.membershipChangesInRoomsOf(userId, from, to));
  const lastOwn = new Map<string, unknown>();
  for (const e of await store.membershipEvents(userId, from, to)) lastOwn.set(e.roomId, contentOf(e)['membership']);
  const roomsLeft = [...lastOwn].filter(([, m]) => m !== 'join').map(([roomId]) => roomId);
  if (roomsLeft.length > 0) for (const members of (await store.joinedMembersOf(roomsLeft)).values()) for (const u of members) candidates.add(u);
  return [...candidates].filter((u) => u !== userId && !mates.has(u));
}

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
      const { userIds, privateChanges } = await userAPI.queryKeyChanges({ fromOffset: from.deviceList, toOffset: to.deviceList });
      for (const u of userIds) if (mates.has(u)) changed.add(u);
      for (const p of privateChanges ?? []) if (p.visibleTo === device.userId) changed.add(p.userId);
    }
    // Users who came to share a room in the range: their devices are news too.
    const rooms = (await store.roomsWithMembership(device.userId, ['join'])).map((r) => r.roomId);
    for (const u of await store.joinsInRange(rooms, from.pdu, to.pdu, ['join', 'invite', 'knock'])) if (u !== device.userId) changed.add(u);
    // Users whose membership changed in the range and who share no room now have left.
    const left = (await usersNoLongerShared(store, device.userId, from.pdu, to.pdu, mates)).filter((u) => !changed.has(u));
    return jsonResponse({ changed: [...changed], left });
  });
}
