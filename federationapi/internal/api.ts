import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { JsonObject } from '../../internal/matrix/index.js';
import type {
  ClaimRemoteKeysRequest,
  ClaimRemoteKeysResponse,
  QueryRemoteDeviceListRequest,
  QueryRemoteDeviceListResponse,
  QueryRemoteKeysRequest,
  QueryRemoteKeysResponse,
  QueryRemoteDirectoryRequest,
  QueryRemotePublicRoomsRequest,
  QueryRemotePublicRoomsResponse,
  QueryRemoteDirectoryResponse,
  QueryRemoteProfileRequest,
  QueryRemoteProfileResponse,
  FederationInternalAPI,
  PerformInviteRequest, PerformInviteResponse, PerformJoinRequest, PerformJoinResponse, PerformLeaveRequest, PerformLeaveResponse } from '../api/index.js';
import type { Inviter } from './perform/invite.js';
import { FederationHttpError, type FederationClient } from '../client/index.js';
import type { Joiner } from './perform/join.js';
import type { ThirdPartyInviteExchanger } from './perform/thirdpartyinvite.js';
import type { PerformThirdPartyInviteRequest, PerformThirdPartyInviteResponse } from '../api/index.js';
import type { OutboundPeeker } from './peekoutbound.js';
import type { PerformOutboundPeekRequest, PerformOutboundPeekResponse, PerformOutboundUnpeekRequest, PerformOutboundUnpeekResponse } from '../api/index.js';
import type { SpaceHierarchyFetcher } from './perform/hierarchy.js';
import type { TimestampFetcher } from './perform/timestamp.js';
import type { Backfiller } from './perform/backfill.js';
import type {
  PerformRemoteBackfillRequest,
  PerformRemoteBackfillResponse,
  PerformRemoteTimestampToEventRequest,
  PerformRemoteTimestampToEventResponse,
  QueryRemoteSpaceHierarchyRequest,
  QueryRemoteSpaceHierarchyResponse,
} from '../api/index.js';

export class FederationInternalAPIImpl implements FederationInternalAPI {
  private readonly startedAt = Date.now();

  constructor(
    private readonly serverName: string,
    private readonly joiner?: Joiner,
    private readonly inviter?: Inviter,
    private readonly client?: Pick<FederationClient, 'queryProfile' | 'queryDirectory' | 'publicRooms' | 'request'>,
    /** Lookups in other servers' rooms (spaces, timestamps); absent with federation disabled. */
    private readonly lookups: { hierarchy?: SpaceHierarchyFetcher; timestamps?: TimestampFetcher; backfill?: Backfiller } = {},
    /** Peeks into other servers' rooms (MSC2444); absent when they are off. */
    private readonly peeker?: Pick<OutboundPeeker, 'peek' | 'unpeek'>,
    /** Redeems third-party invites signed by identity servers. */
    private readonly thirdParty?: Pick<ThirdPartyInviteExchanger, 'perform'>,
  ) {}

  async performOutboundPeek(req: PerformOutboundPeekRequest): Promise<PerformOutboundPeekResponse> {
    if (!this.peeker) return { error: 'failed', message: 'peeking over federation (msc2444) is off' };
    return this.peeker.peek(req);
  }

  async performOutboundUnpeek(req: PerformOutboundUnpeekRequest): Promise<PerformOutboundUnpeekResponse> {
    if (!this.peeker) return { ended: false };
    return this.peeker.unpeek(req);
  }

  async queryRemoteSpaceHierarchy(req: QueryRemoteSpaceHierarchyRequest): Promise<QueryRemoteSpaceHierarchyResponse> {
    if (!this.lookups.hierarchy) return { error: 'unreachable', message: 'federation is disabled' };
    return this.lookups.hierarchy.fetch(req);
  }

  async performRemoteTimestampToEvent(req: PerformRemoteTimestampToEventRequest): Promise<PerformRemoteTimestampToEventResponse> {
    if (!this.lookups.timestamps) return { error: 'unreachable', message: 'federation is disabled' };
    return this.lookups.timestamps.lookup(req);
  }

  async performRemoteBackfill(req: PerformRemoteBackfillRequest): Promise<PerformRemoteBackfillResponse> {
    if (!this.lookups.backfill) return { error: 'unreachable', message: 'federation is disabled' };
    return this.lookups.backfill.backfill(req);
  }

  private static remoteFailure(err: unknown): { error: 'not_found' | 'unreachable'; message: string } {
    if (err instanceof FederationHttpError && err.status >= 400 && err.status < 500) return { error: 'not_found', message: err.error ?? err.message };
    return { error: 'unreachable', message: err instanceof Error ? err.message : String(err) };
  }

  async queryRemoteProfile(req: QueryRemoteProfileRequest): Promise<QueryRemoteProfileResponse> {
    const server = req.user_id.slice(req.user_id.indexOf(':') + 1);
    if (!this.client) return { error: 'unreachable', message: 'federation is disabled' };
    try {
      return { profile: await this.client.queryProfile(server, req.user_id, req.field) };
    } catch (err) {
      return FederationInternalAPIImpl.remoteFailure(err);
    }
  }

  private static objectOf(v: unknown): Record<string, unknown> {
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  }

  async queryRemoteKeys(req: QueryRemoteKeysRequest): Promise<QueryRemoteKeysResponse> {
    if (!this.client) return { error: 'federation is disabled', status: 503 };
    try {
      const res = await this.client.request(req.server_name, 'POST', '/_matrix/federation/v1/user/keys/query', { body: { device_keys: req.device_keys }, timeoutMs: req.timeout_ms });
      if (res.status !== 200) return { error: `${req.server_name} answered ${res.status}`, status: res.status };
      const body = FederationInternalAPIImpl.objectOf(res.body);
      // Only the users asked about, and only keys that claim to be theirs.
      const deviceKeys: Record<string, Record<string, JsonObject>> = {};
      for (const [user, devices] of Object.entries(FederationInternalAPIImpl.objectOf(body['device_keys']))) {
        if (!(user in req.device_keys)) continue;
        const out: Record<string, JsonObject> = {};
        for (const [device, key] of Object.entries(FederationInternalAPIImpl.objectOf(devices))) {
          const k = FederationInternalAPIImpl.objectOf(key);
          if (k['user_id'] === user && k['device_id'] === device) out[device] = k as JsonObject;
        }
        deviceKeys[user] = out;
      }
      const crossSigning = (field: string): Record<string, JsonObject> => {
        const out: Record<string, JsonObject> = {};
        for (const [user, key] of Object.entries(FederationInternalAPIImpl.objectOf(body[field]))) {
          const k = FederationInternalAPIImpl.objectOf(key);
          if (user in req.device_keys && k['user_id'] === user) out[user] = k as JsonObject;
        }
        return out;
      };
      return { device_keys: deviceKeys, master_keys: crossSigning('master_keys'), self_signing_keys: crossSigning('self_signing_keys') };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err), status: 503 };
    }
  }

  async queryRemoteDeviceList(req: QueryRemoteDeviceListRequest): Promise<QueryRemoteDeviceListResponse> {
    if (!this.client) return { error: 'federation is disabled', status: 503 };
    const colon = req.user_id.indexOf(':');
    if (!req.user_id.startsWith('@') || colon < 0) return { error: `${req.user_id} is not a user ID`, status: 400 };
    const server = req.user_id.slice(colon + 1);
    try {
      const res = await this.client.request(server, 'GET', `/_matrix/federation/v1/user/devices/${encodeURIComponent(req.user_id)}`, { timeoutMs: req.timeout_ms });
      if (res.status !== 200) return { error: `${server} answered ${res.status}`, status: res.status };
      return { body: FederationInternalAPIImpl.objectOf(res.body) as JsonObject };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err), status: 503 };
    }
  }

  async claimRemoteKeys(req: ClaimRemoteKeysRequest): Promise<ClaimRemoteKeysResponse> {
    if (!this.client) return { error: 'federation is disabled', status: 503 };
    try {
      const res = await this.client.request(req.server_name, 'POST', '/_matrix/federation/v1/user/keys/claim', { body: { one_time_keys: req.one_time_keys }, timeoutMs: req.timeout_ms });
      if (res.status !== 200) return { error: `${req.server_name} answered ${res.status}`, status: res.status };
      const out: Record<string, Record<string, JsonObject>> = {};
      for (const [user, devices] of Object.entries(FederationInternalAPIImpl.objectOf(FederationInternalAPIImpl.objectOf(res.body)['one_time_keys']))) {
        if (!(user in req.one_time_keys)) continue;
        out[user] = FederationInternalAPIImpl.objectOf(devices) as Record<string, JsonObject>;
      }
      return { one_time_keys: out };
    } catch (err) {
      return { error: err instanceof Error ? err.message : String(err), status: 503 };
    }
  }

  async queryRemoteDirectory(req: QueryRemoteDirectoryRequest): Promise<QueryRemoteDirectoryResponse> {
    const server = req.alias.slice(req.alias.indexOf(':') + 1);
    if (!this.client) return { error: 'unreachable', message: 'federation is disabled' };
    try {
      const res = await this.client.queryDirectory(server, req.alias);
      return { room_id: res.room_id, servers: Array.isArray(res.servers) ? res.servers.filter((x): x is string => typeof x === 'string') : [server] };
    } catch (err) {
      return FederationInternalAPIImpl.remoteFailure(err);
    }
  }

  async queryRemotePublicRooms(req: QueryRemotePublicRoomsRequest): Promise<QueryRemotePublicRoomsResponse> {
    if (!this.client) return { error: 'unreachable', message: 'federation is disabled' };
    const body: JsonObject = {
      ...(req.limit !== undefined ? { limit: req.limit } : {}),
      ...(req.since !== undefined ? { since: req.since } : {}),
      ...(req.search_term !== undefined ? { filter: { generic_search_term: req.search_term } } : {}),
      ...(req.include_all_networks !== undefined ? { include_all_networks: req.include_all_networks } : {}),
      ...(req.third_party_instance_id !== undefined ? { third_party_instance_id: req.third_party_instance_id } : {}),
    };
    try {
      const res = await this.client.publicRooms(req.server_name, body);
      // Another server's answer is passed on only in the spec's shape.
      const chunk = (res['chunk'] as unknown[]).filter((r): r is JsonObject => typeof r === 'object' && r !== null && !Array.isArray(r) && typeof (r as JsonObject)['room_id'] === 'string');
      const text = (k: string): string | undefined => (typeof res[k] === 'string' ? (res[k] as string) : undefined);
      const total = res['total_room_count_estimate'];
      return {
        chunk,
        ...(text('next_batch') !== undefined ? { next_batch: text('next_batch')! } : {}),
        ...(text('prev_batch') !== undefined ? { prev_batch: text('prev_batch')! } : {}),
        ...(typeof total === 'number' ? { total_room_count_estimate: total } : {}),
      };
    } catch (err) {
      return FederationInternalAPIImpl.remoteFailure(err);
    }
  }

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'federationapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async performJoin(req: PerformJoinRequest): Promise<PerformJoinResponse> {
    if (!this.joiner) return { error: 'failed', message: 'federation is disabled' };
    return this.joiner.join(req);
  }

  async performInvite(req: PerformInviteRequest): Promise<PerformInviteResponse> {
    if (!this.inviter) return { error: 'failed', message: 'federation is disabled' };
    return this.inviter.invite(req);
  }

  async performLeave(req: PerformLeaveRequest): Promise<PerformLeaveResponse> {
    if (!this.inviter) return { error: 'failed', message: 'federation is disabled' };
    return this.inviter.leave(req);
  }

  async performThirdPartyInvite(req: PerformThirdPartyInviteRequest): Promise<PerformThirdPartyInviteResponse> {
    if (!this.thirdParty) return { error: 'failed', message: 'third-party invites are not set up' };
    return this.thirdParty.perform(req);
  }
}
