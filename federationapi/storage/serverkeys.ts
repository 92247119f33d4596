/**
 * Other servers' signing keys (table federationapi_server_keys): one row per (server, key ID),
 * written by the key ring after it verified the response the key came in, and read back on a
 * cache miss and by the notary endpoints.
 *
 * A later write for the same key replaces the row only when it comes from a response at least as
 * fresh (a valid_until_ts not smaller), so a stale response served by a notary cannot undo what
 * a newer one said (for instance that the key has since expired).
 */
import type { Kysely } from 'kysely';

export interface FederationapiServerKeysTable {
  server_name: string;
  key_id: string;
  /** Unpadded base64 of the Ed25519 public key. */
  public_key: string;
  /** The response's valid_until_ts, capped at fetched_ts + 7 days. */
  valid_until_ts: number;
  /** For keys listed in old_verify_keys: when the key stopped being used. */
  expired_ts: number | null;
  fetched_ts: number;
  /** The origin-signed /_matrix/key/v2/server response the key came in. */
  response_json: string;
}

export interface FederationapiServerKeysDatabase {
  federationapi_server_keys: FederationapiServerKeysTable;
}

export interface StoredServerKey {
  serverName: string;
  keyId: string;
  publicKey: string;
  validUntilTs: number;
  expiredTs: number | null;
  fetchedTs: number;
}

export interface StoredKeyResponse {
  /** The origin-signed response JSON, as text. */
  json: string;
  /** The latest fetched_ts of the keys stored from it. */
  fetchedTs: number;
}

export class ServerKeyStore {
  constructor(readonly db: Kysely<FederationapiServerKeysDatabase>) {}

  /** Every key stored for the server. */
  async keysOf(serverName: string): Promise<StoredServerKey[]> {
    const rows = await this.db
      .selectFrom('federationapi_server_keys')
      .select(['server_name', 'key_id', 'public_key', 'valid_until_ts', 'expired_ts', 'fetched_ts'])
      .where('server_name', '=', serverName)
      .execute();
    return rows.map((r) => ({
      serverName: r.server_name,
      keyId: r.key_id,
      publicKey: r.public_key,
      validUntilTs: Number(r.valid_until_ts),
      expiredTs: r.expired_ts === null ? null : Number(r.expired_ts),
      fetchedTs: Number(r.fetched_ts),
    }));
  }

  /**
   * Stores the keys of one response (`responseJson`), each unless the row already holds the key
   * from a fresher response. One transaction.
   */
  async storeKeys(keys: readonly StoredServerKey[], responseJson: string): Promise<void> {
    if (keys.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      for (const k of keys) {
        await tx
          .insertInto('federationapi_server_keys')
          .values({
            server_name: k.serverName,
            key_id: k.keyId,
            public_key: k.publicKey,
            valid_until_ts: k.validUntilTs,
            expired_ts: k.expiredTs,
            fetched_ts: k.fetchedTs,
            response_json: responseJson,
          })
          .onConflict((oc) =>
            oc
              .columns(['server_name', 'key_id'])
              .doUpdateSet((eb) => ({
                public_key: eb.ref('excluded.public_key'),
                valid_until_ts: eb.ref('excluded.valid_until_ts'),
                expired_ts: eb.ref('excluded.expired_ts'),
                fetched_ts: eb.ref('excluded.fetched_ts'),
                response_json: eb.ref('excluded.response_json'),
              }))
              .where((eb) => eb('excluded.valid_until_ts', '>=', eb.ref('federationapi_server_keys.valid_until_ts'))),
          )
          .execute();
      }
    });
  }

  /** The distinct responses the server's stored keys came in, most recently fetched first. */
  async responsesOf(serverName: string): Promise<StoredKeyResponse[]> {
    const rows = await this.db
      .selectFrom('federationapi_server_keys')
      .select(['response_json', 'fetched_ts'])
      .where('server_name', '=', serverName)
      .execute();
    const byJson = new Map<string, number>();
    for (const r of rows) byJson.set(r.response_json, Math.max(byJson.get(r.response_json) ?? 0, Number(r.fetched_ts)));
    return [...byJson].map(([json, fetchedTs]) => ({ json, fetchedTs })).sort((a, b) => b.fetchedTs - a.fetchedTs);
  }
}
