/**
 * Bundled aggregations ("Aggregations of child events"): `unsigned["m.relations"]` on the
 * events a route serves, computed for a whole response at once with a fixed number of queries
 * whatever its size (no query per event):
 *
 * - `m.thread`: `count` and the newest (by stream position) `latest_event` among the thread's
 *   children not sent by users the requester ignores, and `current_user_participated` (the
 *   requester sent the root or a child). `latest_event` is served in the same format as the
 *   root and carries its own aggregations (threads cannot nest, so one more level ends it).
 * - `m.reference`: `chunk` of the referencing events' IDs.
 * - `m.replace`: the most recent valid edit (newest origin_server_ts, then the largest event
 *   ID): same room, same sender, same type, the original neither a state event nor itself an
 *   edit nor redacted, the edit not a state event and (unencrypted) with `m.new_content`.
 * - `m.annotation` is not aggregated (the spec says so).
 *
 * The events whose content a bundle shows (latest_event, the edit) must be visible to the
 * requester (history visibility, from the roomserver, in one call per level); an invisible
 * latest thread event gives way to the newest visible one. Counts and reference IDs are
 * not filtered by visibility: they expose no content, and checking every child of a large
 * thread would cost a visibility check per child on every response.
 */
import type { JsonObject } from '../../internal/matrix/index.js';
import type { RoomserverInternalAPI } from '../../roomserver/api/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { parseRelation, type Relation, type RelationsStore } from '../storage/relations.js';
import type { StreamEvent } from '../storage/syncstore.js';
import { clientEvent, contentOf, type ClientEventOptions } from './clientevent.js';

export type AggregationsRoomserverAPI = Pick<RoomserverInternalAPI, 'queryVisibleEvents'>;
export type AggregationsUserAPI = Pick<ClientUserAPI, 'queryAccountData'>;

/** An event a response serves, and its serialised form, to which the bundle is added. */
export interface BundleTarget {
  event: StreamEvent;
  json: JsonObject;
}

export interface BundleOptions {
  /** Users the requester ignores; read from their account data when not given. */
  ignored?: ReadonlySet<string>;
  /** How the response serialises events (latest_event and edits are served the same way). */
  eventOptions?: ClientEventOptions;
}

/** Edits tried per original when the newest is invalid or invisible. */
const MAX_EDIT_ROUNDS = 3;
/** Older thread children looked at when the newest one is invisible to the requester. */
const LATEST_FALLBACK = 20;

/** Whether an `event_fields` filter keeps `unsigned["m.relations"]` (bundling is wasted otherwise). */
function fieldsKeepRelations(fields: readonly string[] | undefined): boolean {
  return fields === undefined || fields.some((f) => f === 'unsigned' || f.startsWith('unsigned.m\\.relations'));
}

/** Whether an `event_fields` filter keeps `unsigned` (where a redaction is named). */
function fieldsKeepUnsigned(fields: readonly string[] | undefined): boolean {
  return fields === undefined || fields.includes('unsigned');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class Aggregations {
  constructor(
    private readonly relations: RelationsStore,
    private readonly rsAPI: AggregationsRoomserverAPI,
    private readonly userAPI: AggregationsUserAPI,
  ) {}

  /** The users `userId` ignores (m.ignored_user_list). */
  async ignoredUsers(userId: string): Promise<Set<string>> {
    const content = (await this.userAPI.queryAccountData({ userId, type: 'm.ignored_user_list' })).content as { ignored_users?: unknown } | undefined;
    return new Set(isObject(content?.ignored_users) ? Object.keys(content.ignored_users) : []);
  }

  /**
   * Adds `unsigned["m.relations"]` to the targets that have aggregatable children, and to
   * redacted targets `unsigned.redacted_because` (the redaction, served like them; spec
   * "Redactions") and `redacted_by` (its ID, as Synapse serves it).
   */
  async bundle(userId: string, targets: readonly BundleTarget[], opts: BundleOptions = {}): Promise<void> {
    const eventOptions = opts.eventOptions ?? {};
    if (targets.length > 0 && fieldsKeepUnsigned(eventOptions.eventFields)) await this.markRedacted(targets, eventOptions);
    if (targets.length === 0 || !fieldsKeepRelations(eventOptions.eventFields)) return;
    const ignored = opts.ignored ?? (await this.ignoredUsers(userId));
    await this.level(userId, targets, ignored, eventOptions, true);
  }

  /** Marks the redacted targets with their redaction (one query, and one more when any is redacted). */
  private async markRedacted(targets: readonly BundleTarget[], eo: ClientEventOptions): Promise<void> {
    const by = await this.relations.redactionsOf(targets.map((t) => t.event.eventId));
    if (by.size === 0) return;
    const redactions = new Map((await this.relations.eventsByPosOrId([], [...new Set(by.values())])).map((e) => [e.eventId, e]));
    for (const t of targets) {
      const redactionId = by.get(t.event.eventId);
      if (redactionId === undefined) continue;
      const unsigned: JsonObject = { ...(isObject(t.json['unsigned']) ? (t.json['unsigned'] as JsonObject) : {}), redacted_by: redactionId };
      const redaction = redactions.get(redactionId);
      if (redaction) unsigned['redacted_because'] = clientEvent(redaction, eo);
      t.json['unsigned'] = unsigned;
    }
  }

  private async visibleIds(userId: string, events: readonly StreamEvent[]): Promise<Set<string>> {
    if (events.length === 0) return new Set();
    return new Set((await this.rsAPI.queryVisibleEvents({ event_ids: [...new Set(events.map((e) => e.eventId))], user_id: userId })).visible_event_ids);
  }

  private async level(userId: string, targets: readonly BundleTarget[], ignored: ReadonlySet<string>, eo: ClientEventOptions, withThreads: boolean): Promise<void> {
    // State events receive no bundles (spec); an event served twice gets the same bundle.
    const byId = new Map<string, BundleTarget[]>();
    for (const t of targets) if (t.event.stateKey === null) byId.set(t.event.eventId, [...(byId.get(t.event.eventId) ?? []), t]);
    if (byId.size === 0) return;
    const parents = new Map([...byId].map(([id, ts]) => [id, ts[0]!.event]));
    const ids = [...parents.keys()];
    const [threads, children] = await Promise.all([
      withThreads ? this.relations.threadSummaries(new Map([...parents].map(([id, e]) => [id, e.roomId])), userId, ignored) : Promise.resolve(new Map<string, never>()),
      this.relations.childrenOf(ids, ['m.reference', 'm.replace'], ignored),
    ]);

    const references = new Map<string, string[]>();
    const editCandidates = new Map<string, Relation[]>();
    for (const c of children) {
      const parent = parents.get(c.eventId)!;
      if (c.roomId !== parent.roomId) continue;
      if (c.relType === 'm.reference') references.set(c.eventId, [...(references.get(c.eventId) ?? []), c.childEventId]);
      else if (c.sender === parent.sender && c.childType === parent.type && parseRelation(contentOf(parent))?.relType !== 'm.replace') {
        editCandidates.set(c.eventId, [...(editCandidates.get(c.eventId) ?? []), c]);
      }
    }
    // A redacted original bundles no edit, whatever became of the edits.
    for (const id of await this.relations.redactedAmong([...editCandidates.keys()])) editCandidates.delete(id);
    for (const list of editCandidates.values()) list.sort((a, b) => b.originTs - a.originTs || (a.childEventId < b.childEventId ? 1 : a.childEventId > b.childEventId ? -1 : 0));

    // The newest thread child and the best edit candidate of each parent, in one read and one visibility call.
    const threadList = [...threads].filter(([, s]) => s.count > 0);
    const latest = new Map<string, StreamEvent>();
    const edits = new Map<string, StreamEvent>();
    const tried = new Map<string, number>();
    for (let round = 0; round < MAX_EDIT_ROUNDS; round++) {
      const pending = [...editCandidates].filter(([id, list]) => !edits.has(id) && (tried.get(id) ?? 0) < list.length);
      if (round > 0 && pending.length === 0) break;
      const candidateIds = pending.map(([id, list]) => list[tried.get(id) ?? 0]!.childEventId);
      const loaded = await this.relations.eventsByPosOrId(round === 0 ? threadList.map(([, s]) => s.latestPos) : [], candidateIds);
      const byPos = new Map(loaded.map((e) => [e.pos, e]));
      const byEventId = new Map(loaded.map((e) => [e.eventId, e]));
      const visible = await this.visibleIds(userId, loaded);
      if (round === 0) {
        for (const [id, s] of threadList) {
          const e = byPos.get(s.latestPos);
          if (e && visible.has(e.eventId)) latest.set(id, e);
        }
      }
      for (const [id, list] of pending) {
        const i = tried.get(id) ?? 0;
        tried.set(id, i + 1);
        const e = byEventId.get(list[i]!.childEventId);
        if (!e || !visible.has(e.eventId) || e.stateKey !== null) continue;
        if (e.type !== 'm.room.encrypted' && !isObject(contentOf(e)['m.new_content'])) continue;
        edits.set(id, e);
      }
    }
    // Rare: the newest thread child is one the requester may not see; the newest visible one stands in.
    for (const [id, s] of threadList) {
      if (latest.has(id)) continue;
      const older = await this.relations.threadChildrenBefore(s.roomId, id, s.latestPos, LATEST_FALLBACK, ignored);
      const visible = await this.visibleIds(userId, older);
      const e = older.find((o) => visible.has(o.eventId));
      if (e) latest.set(id, e);
    }

    // Serialise the latest thread events and give them their own bundles (one more level).
    const latestJson = new Map([...latest].map(([id, e]) => [id, clientEvent(e, eo)]));
    if (withThreads && latest.size > 0) await this.level(userId, [...latest].map(([id, e]) => ({ event: e, json: latestJson.get(id)! })), ignored, eo, false);

    for (const [id, ts] of byId) {
      const rel: JsonObject = {};
      const s = threads.get(id);
      const l = latestJson.get(id);
      if (s && l) rel['m.thread'] = { latest_event: l, count: s.count, current_user_participated: s.participated || parents.get(id)!.sender === userId };
      const refs = references.get(id);
      if (refs) rel['m.reference'] = { chunk: refs.map((r) => ({ event_id: r })) };
      const edit = edits.get(id);
      if (edit) rel['m.replace'] = clientEvent(edit, eo);
      if (Object.keys(rel).length === 0) continue;
      for (const t of ts) t.json['unsigned'] = { ...(isObject(t.json['unsigned']) ? (t.json['unsigned'] as JsonObject) : {}), 'm.relations': rel };
    }
  }
}
