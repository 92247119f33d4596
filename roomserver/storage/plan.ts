/**
 * A planned store (EventStore.planned, StateSnapshotStore.readOnly) refuses writes it cannot
 * hold back for its one final statement: the caller then does the work the usual way, in a
 * transaction. Nothing was written when this is thrown.
 */
export class NotPlannable extends Error {}
