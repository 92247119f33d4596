/**
 * Binding a user's 3PID on an identity server, and unbinding it, through this homeserver
 * (Client-Server API "Adding Account Administrative Contact Information": /account/3pid/bind,
 * /unbind, /delete, and /account/deactivate).
 *
 * Binding: the client has validated the 3PID at the identity server itself (a session `sid`
 * with its `client_secret`); we ask that server to publish the association with the user
 * (/3pid/bind, with the client's `id_access_token`) and record which server holds it.
 * Unbinding: /3pid/unbind signed by this server (the identity server trusts the server that
 * controls the user ID), on the server the client names or else on those we recorded.
 *
 * Like Synapse, any identity server a client names may be used (not only
 * `trusted_third_party_id_servers`): the calls are held to federation_api's network rules.
 */
import type { Logger } from 'pino';
import { MatrixError } from '../../internal/httputil/index.js';
import { IdentityServerError, type HomeserverSigner, type IdentityServerClient } from '../../internal/identityserver/index.js';
import { threePidKey, type ClientUserAPI, type ThreePidBinding } from '../../userapi/api/index.js';

/** The spec's id_server_unbind_result. */
export type UnbindResult = 'success' | 'no-support';

export interface BindRequest {
  idServer: string;
  idAccessToken: string;
  sid: string;
  clientSecret: string;
}

export interface ThreePidBinderDeps {
  userAPI: Pick<ClientUserAPI, 'performThreePidBindingSave' | 'queryThreePidBindings' | 'performThreePidBindingRemoval'>;
  identityServers: Pick<IdentityServerClient, 'bind' | 'unbind'>;
  signer: HomeserverSigner;
  log: Logger;
}

const MATRIX_ERRCODE = /^M_[A-Z0-9_]+$/;

/** A failed /3pid/bind as the client is told of it (never a 500, never a 401: that would log the client out). */
function bindFailure(e: IdentityServerError, idServer: string): MatrixError {
  if (e.kind === 'refused' && e.status !== undefined && e.status >= 400 && e.status < 500 && e.status !== 429) {
    // The identity server does not accept the client's id_access_token, or wants its terms agreed to first.
    if (e.status === 401 || e.status === 403) {
      return new MatrixError(403, e.errcode !== undefined && MATRIX_ERRCODE.test(e.errcode) ? e.errcode : 'M_FORBIDDEN', `The identity server ${idServer} refused the request: ${e.message}`);
    }
    // No validated session with that sid and client_secret (M_SESSION_NOT_VALIDATED, M_NO_VALID_SESSION, ...).
    return new MatrixError(400, 'M_THREEPID_AUTH_FAILED', `The identity server ${idServer} did not bind the 3PID: ${e.message}`);
  }
  return new MatrixError(502, 'M_UNKNOWN', `The identity server ${idServer} could not be used: ${e.message}`);
}

/**
 * A failed /3pid/unbind: the spec has the identity server's own Matrix error passed on to the
 * client. Answers without one, and failures to reach it, are 502.
 */
function unbindFailure(e: IdentityServerError, idServer: string): MatrixError {
  if (e.kind === 'refused' && e.status !== undefined && e.status >= 400 && e.status < 500) {
    if (e.errcode !== undefined && MATRIX_ERRCODE.test(e.errcode)) return new MatrixError(e.status === 401 ? 403 : e.status, e.errcode, `The identity server ${idServer} refused to unbind: ${e.message}`);
    if (e.status === 401 || e.status === 403) return new MatrixError(403, 'M_FORBIDDEN', `The identity server ${idServer} refused to unbind: ${e.message}`);
  }
  return new MatrixError(502, 'M_UNKNOWN', `The identity server ${idServer} could not be used: ${e.message}`);
}

export class ThreePidBinder {
  constructor(private readonly d: ThreePidBinderDeps) {}

  /** POST /account/3pid/bind. */
  async bind(userId: string, req: BindRequest): Promise<void> {
    let bound;
    try {
      bound = await this.d.identityServers.bind(req.idServer, req.idAccessToken, { sid: req.sid, client_secret: req.clientSecret, mxid: userId });
    } catch (e) {
      if (e instanceof IdentityServerError) throw bindFailure(e, req.idServer);
      throw e;
    }
    await this.d.userAPI.performThreePidBindingSave({ userId, medium: bound.medium, address: bound.address, idServer: req.idServer });
    this.d.log.info({ userId, medium: bound.medium, id_server: req.idServer }, '3PID bound');
  }

  /**
   * Unbinds one 3PID: on `idServer` when the client names one, else on every server we recorded
   * it bound on (none known: no-support). A record goes once its server has answered.
   * Throws a MatrixError when an identity server refuses (its error, for the client).
   */
  async unbind(userId: string, medium: string, address: string, idServer?: string): Promise<UnbindResult> {
    const recorded = (await this.d.userAPI.queryThreePidBindings({ userId, medium, address })).bindings;
    const targets: ThreePidBinding[] =
      idServer === undefined ? recorded : [recorded.find((b) => b.idServer === idServer) ?? { medium, address, idServer }];
    if (targets.length === 0) return 'no-support';
    let result: UnbindResult = 'success';
    for (const t of targets) {
      let outcome;
      try {
        outcome = await this.d.identityServers.unbind(t.idServer, this.d.signer, userId, { medium: t.medium, address: t.address });
      } catch (e) {
        if (e instanceof IdentityServerError) throw unbindFailure(e, t.idServer);
        throw e;
      }
      if (outcome === 'not_supported') result = 'no-support';
      await this.d.userAPI.performThreePidBindingRemoval({ userId, medium: t.medium, address: t.address, idServer: t.idServer });
    }
    return result;
  }

  /**
   * Deactivation: unbinds each of the user's bound 3PIDs (from `idServer` when given, else where
   * it was bound). Best effort: a failure is logged, leaves its record, and makes the answer
   * no-support; so does having nothing to unbind (no server could be determined).
   */
  async unbindAll(userId: string, idServer?: string): Promise<UnbindResult> {
    const bindings = (await this.d.userAPI.queryThreePidBindings({ userId })).bindings;
    const threePids = new Map<string, ThreePidBinding[]>();
    for (const b of bindings) {
      const key = threePidKey(b.medium, b.address);
      threePids.set(key, [...(threePids.get(key) ?? []), b]);
    }
    if (threePids.size === 0) return 'no-support';
    let result: UnbindResult = 'success';
    for (const recorded of threePids.values()) {
      const first = recorded[0]!;
      const targets = idServer === undefined ? recorded : [recorded.find((b) => b.idServer === idServer) ?? { ...first, idServer }];
      for (const t of targets) {
        try {
          const outcome = await this.d.identityServers.unbind(t.idServer, this.d.signer, userId, { medium: t.medium, address: t.address });
          if (outcome === 'not_supported') result = 'no-support';
          await this.d.userAPI.performThreePidBindingRemoval({ userId, medium: t.medium, address: t.address, idServer: t.idServer });
        } catch (err) {
          // Whatever went wrong, the deactivation goes on.
          result = 'no-support';
          this.d.log.warn({ userId, medium: t.medium, id_server: t.idServer, err: err instanceof Error ? err.message : String(err) }, 'deactivation: could not unbind a 3PID');
        }
      }
    }
    return result;
  }
}
