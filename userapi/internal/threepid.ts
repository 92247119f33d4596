/** The record of 3PID bindings (api/threepid.ts) over its store. */
import {
  threePidKey,
  type PerformThreePidBindingRemovalRequest,
  type PerformThreePidBindingRemovalResponse,
  type PerformThreePidBindingSaveRequest,
  type PerformThreePidBindingSaveResponse,
  type QueryThreePidBindingsRequest,
  type QueryThreePidBindingsResponse,
  type ThreePidAPI,
  type ThreePidBinding,
} from '../api/threepid.js';
import type { ThreePidBindingRow, ThreePidBindingStore } from '../storage/threepidbindings.js';

export class ThreePidAPIImpl implements ThreePidAPI {
  constructor(
    private readonly serverName: string,
    private readonly store: ThreePidBindingStore,
    private readonly now: () => number = Date.now,
  ) {}

  private localpartOf(userId: string): string | undefined {
    const m = /^@([^:]+):(.+)$/.exec(userId);
    return m && m[2] === this.serverName ? m[1] : undefined;
  }

  /** The user's bindings of one 3PID (compared as threePidKey does), or all of them. */
  private async rows(localpart: string, medium?: string, address?: string): Promise<ThreePidBindingRow[]> {
    const rows = await this.store.list(localpart);
    if (medium === undefined || address === undefined) return rows;
    const key = threePidKey(medium, address);
    return rows.filter((r) => threePidKey(r.medium, r.address) === key);
  }

  async performThreePidBindingSave(req: PerformThreePidBindingSaveRequest): Promise<PerformThreePidBindingSaveResponse> {
    const localpart = this.localpartOf(req.userId);
    if (localpart === undefined) return { saved: false };
    // One row per 3PID and server, whatever case the address came in.
    const existing = (await this.rows(localpart, req.medium, req.address)).find((r) => r.idServer === req.idServer);
    await this.store.add(localpart, req.medium, existing?.address ?? req.address, req.idServer, this.now());
    return { saved: true };
  }

  async queryThreePidBindings(req: QueryThreePidBindingsRequest): Promise<QueryThreePidBindingsResponse> {
    const localpart = this.localpartOf(req.userId);
    if (localpart === undefined) return { bindings: [] };
    const bindings: ThreePidBinding[] = (await this.rows(localpart, req.medium, req.address)).map((r) => ({ medium: r.medium, address: r.address, idServer: r.idServer }));
    return { bindings };
  }

  async performThreePidBindingRemoval(req: PerformThreePidBindingRemovalRequest): Promise<PerformThreePidBindingRemovalResponse> {
    const localpart = this.localpartOf(req.userId);
    if (localpart === undefined) return { removed: 0 };
    let removed = 0;
    for (const r of await this.rows(localpart, req.medium, req.address)) {
      if (req.idServer !== undefined && r.idServer !== req.idServer) continue;
      if (await this.store.remove(localpart, r.medium, r.address, r.idServer)) removed++;
    }
    return { removed };
  }
}
