import type { ComponentStatus, EmptyRequest } from '../../internal/componentapi.js';
import type { QueryAnnotationExistsRequest, QueryAnnotationExistsResponse, SyncInternalAPI } from '../api/index.js';
import type { RelationsStore } from '../storage/relations.js';

export class SyncInternalAPIImpl implements SyncInternalAPI {
  private readonly startedAt = Date.now();

  /** `relations`: absent when this process does not run syncapi's storage (nothing is known then). */
  constructor(
    private readonly serverName: string,
    private readonly relations?: Pick<RelationsStore, 'hasAnnotation'>,
  ) {}

  async queryComponentStatus(_req: EmptyRequest): Promise<ComponentStatus> {
    return { component: 'syncapi', serverName: this.serverName, pid: process.pid, startedAt: this.startedAt };
  }

  async queryAnnotationExists(req: QueryAnnotationExistsRequest): Promise<QueryAnnotationExistsResponse> {
    if (!this.relations) return { exists: false };
    return { exists: await this.relations.hasAnnotation({ roomId: req.room_id, eventId: req.event_id, sender: req.sender, type: req.type, key: req.key }) };
  }
}
