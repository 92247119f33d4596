import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type {
  QueryAnnotationExistsRequest,
  QueryAnnotationExistsResponse,
  QueryEventIdForTransactionRequest,
  QueryEventIdForTransactionResponse,
  SyncInternalAPI,
} from '../api/index.js';
import type { RelationsStore } from '../storage/relations.js';
import type { SyncStore } from '../storage/syncstore.js';

/** The stores the internal API reads. */
export interface SyncInternalAPIStores {
  relations: Pick<RelationsStore, 'hasAnnotation'>;
  events: Pick<SyncStore, 'eventIdForTransaction'>;
}

export class SyncInternalAPIImpl implements SyncInternalAPI {
  private readonly startedAt = Date.now();

  /** `stores`: absent when this process does not run syncapi's storage (nothing is known then). */
  constructor(
    private readonly serverName: string,
    private readonly stores?: SyncInternalAPIStores,
  ) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'syncapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async queryAnnotationExists(req: QueryAnnotationExistsRequest): Promise<QueryAnnotationExistsResponse> {
    if (!this.stores) return { exists: false };
    return { exists: await this.stores.relations.hasAnnotation({ roomId: req.room_id, eventId: req.event_id, sender: req.sender, type: req.type, key: req.key }) };
  }

  async queryEventIdForTransaction(req: QueryEventIdForTransactionRequest): Promise<QueryEventIdForTransactionResponse> {
    if (!this.stores) return {};
    const eventId = await this.stores.events.eventIdForTransaction({
      roomId: req.room_id,
      sender: req.user_id,
      deviceId: req.device_id,
      txnId: req.transaction_id,
      ...(req.type !== undefined ? { type: req.type } : {}),
      ...(req.since_ts !== undefined ? { sinceTs: req.since_ts } : {}),
    });
    return eventId === undefined ? {} : { event_id: eventId };
  }
}
