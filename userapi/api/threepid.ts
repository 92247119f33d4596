/**
 * The record of 3PID bindings made through this server (Client-Server API "Adding Account
 * Administrative Contact Information"): which identity server each of a user's 3PIDs was bound
 * on. userapi only keeps the record; clientapi talks to the identity servers.
 *
 * Email addresses are compared without regard to case (as identity servers treat them);
 * a binding is returned with the address exactly as it was recorded.
 */

export interface ThreePidBinding {
  medium: string;
  address: string;
  /** The identity server's name (host with an optional port). */
  idServer: string;
}

export interface PerformThreePidBindingSaveRequest extends ThreePidBinding {
  userId: string;
}
export interface PerformThreePidBindingSaveResponse {
  /** False when the user is not one of this server's. */
  saved: boolean;
}

export interface QueryThreePidBindingsRequest {
  userId: string;
  /** Only this 3PID's bindings (both or neither). */
  medium?: string;
  address?: string;
}
export interface QueryThreePidBindingsResponse {
  /** Oldest first. */
  bindings: ThreePidBinding[];
}

export interface PerformThreePidBindingRemovalRequest {
  userId: string;
  medium: string;
  address: string;
  /** Only the binding on this identity server; on every server when absent. */
  idServer?: string;
}
export interface PerformThreePidBindingRemovalResponse {
  removed: number;
}

export interface ThreePidAPI {
  performThreePidBindingSave(req: PerformThreePidBindingSaveRequest): Promise<PerformThreePidBindingSaveResponse>;
  queryThreePidBindings(req: QueryThreePidBindingsRequest): Promise<QueryThreePidBindingsResponse>;
  performThreePidBindingRemoval(req: PerformThreePidBindingRemovalRequest): Promise<PerformThreePidBindingRemovalResponse>;
}

export const threePidAPIMethods = ['performThreePidBindingSave', 'queryThreePidBindings', 'performThreePidBindingRemoval'] as const satisfies ReadonlyArray<keyof ThreePidAPI>;

/** The form two addresses of a medium are compared in: emails ignore case and surrounding space. */
export function threePidKey(medium: string, address: string): string {
  return `${medium}\u0000${medium === 'email' ? address.trim().toLowerCase() : address}`;
}
