/**
 * POST /user/{userId}/filter and GET /user/{userId}/filter/{filterId}. A filter is checked
 * against the spec's Filter schema before it is stored, so that /sync never meets a
 * malformed one; unknown keys are kept and ignored, as the spec allows.
 */
import type { Context, Hono } from 'hono';
import { badJson, forbidden, jsonResponse, notFound, readJsonObject, type JsonBody } from '../../internal/httputil/index.js';
import { isRoomIdOfAnyFormat, isValidUserId } from '../../internal/matrix/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;

function isObject(v: unknown): v is JsonBody {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

type Check = (v: unknown, path: string) => void;

const stringList: Check = (v, path) => {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw badJson(`${path} must be a list of strings`);
};
/** A list of room IDs (rooms, not_rooms): an entry that cannot be a room matches nothing, so it is a mistake. */
const roomIdList: Check = (v, path) => {
  stringList(v, path);
  const bad = (v as string[]).find((id) => !isRoomIdOfAnyFormat(id));
  if (bad !== undefined) throw badJson(`${path} must list room IDs, and ${JSON.stringify(bad)} is not one`);
};
/** A list of user IDs (senders, not_senders). */
const userIdList: Check = (v, path) => {
  stringList(v, path);
  const bad = (v as string[]).find((id) => !isValidUserId(id));
  if (bad !== undefined) throw badJson(`${path} must list user IDs, and ${JSON.stringify(bad)} is not one`);
};
const bool: Check = (v, path) => {
  if (typeof v !== 'boolean') throw badJson(`${path} must be true or false`);
};
const limit: Check = (v, path) => {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw badJson(`${path} must be a non-negative integer`);
};

function shape(fields: Record<string, Check>): Check {
  return (v, path) => {
    if (!isObject(v)) throw badJson(`${path} must be an object`);
    for (const [key, check] of Object.entries(fields)) if (v[key] !== undefined) check(v[key], `${path}.${key}`);
  };
}

const eventFilterFields = { limit, types: stringList, not_types: stringList, senders: userIdList, not_senders: userIdList };
const eventFilter = shape(eventFilterFields);
const roomEventFilter = shape({
  ...eventFilterFields,
  rooms: roomIdList,
  not_rooms: roomIdList,
  contains_url: bool,
  lazy_load_members: bool,
  include_redundant_members: bool,
  unread_thread_notifications: bool,
});
const filterShape = shape({
  event_fields: stringList,
  event_format: (v, path) => {
    if (v !== 'client' && v !== 'federation') throw badJson(`${path} must be "client" or "federation"`);
  },
  presence: eventFilter,
  account_data: eventFilter,
  room: shape({
    rooms: roomIdList,
    not_rooms: roomIdList,
    include_leave: bool,
    state: roomEventFilter,
    timeline: roomEventFilter,
    ephemeral: roomEventFilter,
    account_data: roomEventFilter,
  }),
});

export function validateFilter(filter: JsonBody): void {
  filterShape(filter, 'filter');
}

export function addFilterRoutes(client: Hono, userAPI: ClientUserAPI): void {
  clientRoute(client, 'post', '/user/:userId/filter', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    if (c.req.param('userId') !== me.userId) throw forbidden('You may only create filters for yourself');
    const filter = await readJsonObject(c, { maxBytes: MAX_BODY });
    validateFilter(filter);
    const { filterId } = await userAPI.performFilterCreation({ userId: me.userId, filter });
    return jsonResponse({ filter_id: filterId });
  });

  clientRoute(client, 'get', '/user/:userId/filter/:filterId', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    if (c.req.param('userId') !== me.userId) throw forbidden('You may only read your own filters');
    const { filter } = await userAPI.queryFilter({ userId: me.userId, filterId: c.req.param('filterId') ?? '' });
    if (!filter) throw notFound('No such filter');
    return jsonResponse(filter);
  });
}
