/**
 * The notary endpoints (Server-Server API "Querying Keys Through Another Server"):
 *
 *   POST /_matrix/key/v2/query                      {server_keys: {server: {keyId: {minimum_valid_until_ts}}}}
 *   GET  /_matrix/key/v2/query/{serverName}?minimum_valid_until_ts=
 *   GET  /_matrix/key/v2/query/{serverName}/{keyId}  (deprecated form; key ID as in the POST)
 *
 * Each answer is {server_keys: [...]}: every server's key response as the server signed it,
 * with our signature added, so that the asker can check both. Key responses come from the key
 * ring (stored, or fetched from the server itself when none we hold is valid until the
 * asked-for time); our own from the signing identity.
 *
 * minimum_valid_until_ts: the latest asked for among a server's key IDs; the current time when
 * none is given, as the spec says. Invalid server names are answered with nothing, not fetched.
 */
import type { Context, Hono } from 'hono';
import { badJson, invalidParam, jsonResponse, readJsonObject } from '../../internal/httputil/index.js';
import { isValidServerName } from '../../internal/matrix/identifiers.js';
import type { JsonObject } from '../../internal/matrix/types.js';
import type { SigningIdentity } from '../../internal/signingidentity.js';
import type { KeyRing } from '../internal/keyring.js';

/** Bodies are small: a list of servers and key IDs. */
const MAX_QUERY_BYTES = 64 * 1024;
/** Servers per POST; keeps one request from making us fetch from thousands of hosts. */
const MAX_SERVERS_PER_QUERY = 100;

interface ServerQuery {
  serverName: string;
  keyIds: string[];
  minimumValidUntilTs: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isTimestamp = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export type NotaryKeyRing = Pick<KeyRing, 'serverKeyResponses'>;

export function addNotaryRoutes(key: Hono, keyRing: NotaryKeyRing, identity: SigningIdentity, now: () => number = Date.now): void {
  const answer = async (queries: readonly ServerQuery[]): Promise<Response> => {
    const lists = await Promise.all(
      queries.map((q) =>
        isValidServerName(q.serverName) ? keyRing.serverKeyResponses(q.serverName, q.keyIds, q.minimumValidUntilTs) : Promise.resolve([]),
      ),
    );
    const serverKeys: JsonObject[] = lists.flat().map((response) => identity.signJson(response));
    return jsonResponse({ server_keys: serverKeys });
  };

  key.post('/v2/query', async (c) => {
    const body = await readJsonObject(c, { maxBytes: MAX_QUERY_BYTES });
    const requested = body.server_keys;
    if (!isObject(requested)) throw badJson('server_keys must be an object of server names to key criteria.');
    const entries = Object.entries(requested);
    if (entries.length > MAX_SERVERS_PER_QUERY) throw badJson(`server_keys may name at most ${MAX_SERVERS_PER_QUERY} servers.`);
    const queries = entries.map(([serverName, criteria]): ServerQuery => {
      if (!isObject(criteria)) throw badJson(`server_keys.${serverName} must be an object of key IDs to criteria.`);
      let minimum: number | undefined;
      for (const [keyId, c] of Object.entries(criteria)) {
        if (!isObject(c)) throw badJson(`server_keys.${serverName}.${keyId} must be an object.`);
        const m = c.minimum_valid_until_ts;
        if (m === undefined) continue;
        if (!isTimestamp(m)) throw badJson(`server_keys.${serverName}.${keyId}.minimum_valid_until_ts must be an integer.`);
        minimum = Math.max(minimum ?? 0, m);
      }
      return { serverName, keyIds: Object.keys(criteria), minimumValidUntilTs: minimum ?? now() };
    });
    return answer(queries);
  });

  const getQuery = (c: Context, keyIds: string[]): Promise<Response> => {
    const raw = c.req.query('minimum_valid_until_ts');
    let minimum = now();
    if (raw !== undefined && raw !== '') {
      if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw))) throw invalidParam('minimum_valid_until_ts must be an integer.');
      minimum = Number(raw);
    }
    return answer([{ serverName: c.req.param('serverName') ?? '', keyIds, minimumValidUntilTs: minimum }]);
  };
  key.get('/v2/query/:serverName', (c) => getQuery(c, []));
  key.get('/v2/query/:serverName/:keyId', (c) => getQuery(c, [c.req.param('keyId')]));
}
