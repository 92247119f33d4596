/**
 * Room state snapshots as a persistent hash trie, stored node by node.
 *
 * Why: every event needs "the state before it", and consecutive events' states differ in one
 * entry or none. Dendrite stored each snapshot as lists of blocks that were never shared well
 * nor deleted (one server reached 11 GB). Here a state is a map from (event type NID, state key
 * NID) to event NID, kept as a trie keyed by a hash of the pair:
 *
 * - A node holding at most LEAF_MAX entries is a leaf (the entries, sorted). A bigger one is an
 *   inner node with up to 64 children, chosen by the next 6 bits of the key's hash, and the
 *   count of entries below it. The shape depends only on the content, so equal states have equal
 *   trees.
 * - Nodes are immutable and content-addressed per room (unique (room, SHA-256 of the node)).
 *   Storing a state that exists already writes nothing; a state that differs from another in
 *   one entry writes only the nodes on that entry's path (about 1.5 KB in a 100,000-member
 *   room, a few hundred bytes in a small one) and shares every other node.
 * - A snapshot is the NID of its root node; 0 is the empty state.
 * - Garbage collection: the roots in use are the events' state-before snapshots and the rooms'
 *   current state. Nodes of a room not reachable from those roots are deleted
 *   (collectGarbage). It must run while no input for that room is in flight, since a new root
 *   may be built from nodes the collector has not seen yet.
 *
 * Node bytes: a leaf is 0x00 then per entry u32 type NID, u32 state key NID, f64 event NID
 * (16 bytes, sorted by type then state key); an inner node is 0x01, u32 entry count, then per
 * child u8 slot and f64 node NID.
 */
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { inChunks } from '../../internal/sqlutil/index.js';
import { NotPlannable } from './plan.js';
import type { RoomserverDatabase } from './tables.js';

export interface StateEntry {
  typeNid: number;
  stateKeyNid: number;
  eventNid: number;
}

export const LEAF_MAX = 64;
const BITS = 6;
const FANOUT = 1 << BITS;
/** 32-bit hashes give five levels of 6 bits; the last level is a leaf whatever its size. */
const MAX_DEPTH = 5;
const CACHE_LIMIT = 200_000;

type Node = { kind: 'leaf'; entries: StateEntry[] } | { kind: 'inner'; count: number; children: Map<number, number> };

/** One number per (type, state key): type NIDs stay below 2^21, so this is exact in a double. */
export function stateKey(typeNid: number, stateKeyNid: number): number {
  return typeNid * 4294967296 + stateKeyNid;
}

function hash32(typeNid: number, stateKeyNid: number): number {
  // murmur3's finaliser over the two halves: well spread, cheap, stable across versions.
  let h = Math.imul(typeNid ^ 0x9e3779b9, 0x85ebca6b) ^ stateKeyNid;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function slotOf(e: { typeNid: number; stateKeyNid: number }, depth: number): number {
  return (hash32(e.typeNid, e.stateKeyNid) >>> (depth * BITS)) & (FANOUT - 1);
}

function compareEntries(a: StateEntry, b: StateEntry): number {
  return a.typeNid - b.typeNid || a.stateKeyNid - b.stateKeyNid;
}

function encodeLeaf(entries: StateEntry[]): Buffer {
  const buf = Buffer.alloc(1 + entries.length * 16);
  buf[0] = 0;
  let o = 1;
  for (const e of entries) {
    buf.writeUInt32BE(e.typeNid, o);
    buf.writeUInt32BE(e.stateKeyNid, o + 4);
    buf.writeDoubleBE(e.eventNid, o + 8);
    o += 16;
  }
  return buf;
}

function encodeInner(count: number, children: Map<number, number>): Buffer {
  const slots = [...children.keys()].sort((a, b) => a - b);
  const buf = Buffer.alloc(5 + slots.length * 9);
  buf[0] = 1;
  buf.writeUInt32BE(count, 1);
  let o = 5;
  for (const s of slots) {
    buf[o] = s;
    buf.writeDoubleBE(children.get(s)!, o + 1);
    o += 9;
  }
  return buf;
}

function decode(bytes: Uint8Array): Node {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf[0] === 0) {
    const entries: StateEntry[] = [];
    for (let o = 1; o + 16 <= buf.length; o += 16) {
      entries.push({ typeNid: buf.readUInt32BE(o), stateKeyNid: buf.readUInt32BE(o + 4), eventNid: buf.readDoubleBE(o + 8) });
    }
    return { kind: 'leaf', entries };
  }
  const children = new Map<number, number>();
  for (let o = 5; o + 9 <= buf.length; o += 9) children.set(buf[o]!, buf.readDoubleBE(o + 1));
  return { kind: 'inner', count: buf.readUInt32BE(1), children };
}

const countOf = (n: Node): number => (n.kind === 'leaf' ? n.entries.length : n.count);

export class StateSnapshotStore {
  /**
   * Nodes never change, so a node read once can be kept (bounded; oldest first out). Shared
   * with transactions' stores. A node written in a transaction that rolls back stays cached
   * under its NID; SQLite hands that NID out again (AUTOINCREMENT only protects committed
   * ones), but only to a node inserted through put(), which caches the new node over it.
   */
  private readonly cache: Map<number, Node>;

  constructor(
    private readonly db: Kysely<RoomserverDatabase>,
    cache?: Map<number, Node>,
    /** A read-only view refuses to write nodes (NotPlannable): see EventStore.planned. */
    private readonly readOnlyView = false,
  ) {
    this.cache = cache ?? new Map();
  }

  /** A store whose queries run in `tx`, sharing this store's node cache. */
  inTransaction(tx: Kysely<RoomserverDatabase>): StateSnapshotStore {
    return new StateSnapshotStore(tx, this.cache);
  }

  /** A store that reads (sharing this store's node cache) and refuses to write nodes. */
  readOnly(): StateSnapshotStore {
    return new StateSnapshotStore(this.db, this.cache, true);
  }

  private remember(nid: number, node: Node): void {
    if (this.cache.size >= CACHE_LIMIT) {
      let drop = CACHE_LIMIT / 4;
      for (const k of this.cache.keys()) {
        this.cache.delete(k);
        if (--drop <= 0) break;
      }
    }
    this.cache.set(nid, node);
  }

  private async nodes(nids: readonly number[]): Promise<Map<number, Node>> {
    const out = new Map<number, Node>();
    const missing: number[] = [];
    for (const nid of new Set(nids)) {
      const cached = this.cache.get(nid);
      if (cached) out.set(nid, cached);
      else missing.push(nid);
    }
    const rows = await inChunks(missing, (chunk) => this.db.selectFrom('roomserver_state_nodes').select(['state_node_nid', 'node']).where('state_node_nid', 'in', chunk).execute());
    for (const r of rows) {
      const node = decode(r.node);
      const nid = Number(r.state_node_nid);
      this.remember(nid, node);
      out.set(nid, node);
    }
    for (const nid of missing) if (!out.has(nid)) throw new Error(`state node ${nid} is missing`);
    return out;
  }

  /** Writes nodes (deduplicated per room) and returns their NIDs, in order. */
  private async put(roomNid: number, encoded: Buffer[]): Promise<number[]> {
    if (encoded.length === 0) return [];
    if (this.readOnlyView) throw new NotPlannable('a read-only snapshot store writes no nodes');
    const hashes = encoded.map((b) => createHash('sha256').update(b).digest());
    const byHex = new Map<string, number>();
    const unique = new Map<string, { hash: Buffer; node: Buffer }>();
    encoded.forEach((node, i) => unique.set(hashes[i]!.toString('hex'), { hash: hashes[i]!, node }));
    // Inserted rows come back at once; only nodes that existed already need a second look.
    const inserted = await inChunks(
      [...unique.values()],
      (chunk) =>
        this.db
          .insertInto('roomserver_state_nodes')
          .values(chunk.map((u) => ({ room_nid: roomNid, node_hash: u.hash, node: u.node })))
          .onConflict((oc) => oc.columns(['room_nid', 'node_hash']).doNothing())
          .returning(['state_node_nid', 'node_hash'])
          .execute(),
      1000,
    );
    for (const r of inserted) {
      const hex = Buffer.from(r.node_hash).toString('hex');
      const nid = Number(r.state_node_nid);
      byHex.set(hex, nid);
      this.remember(nid, decode(unique.get(hex)!.node));
    }
    const existing = [...unique.entries()].filter(([hex]) => !byHex.has(hex)).map(([, u]) => u.hash);
    const rows = await inChunks(existing, (chunk) =>
      this.db.selectFrom('roomserver_state_nodes').select(['state_node_nid', 'node_hash', 'node']).where('room_nid', '=', roomNid).where('node_hash', 'in', chunk).execute(),
    );
    for (const r of rows) {
      const nid = Number(r.state_node_nid);
      byHex.set(Buffer.from(r.node_hash).toString('hex'), nid);
      if (!this.cache.has(nid)) this.remember(nid, decode(r.node));
    }
    return hashes.map((h) => {
      const nid = byHex.get(h.toString('hex'));
      if (nid === undefined) throw new Error('state node was not stored');
      return nid;
    });
  }

  /** Every entry of a snapshot, sorted by type then state key. */
  async load(snapshotNid: number): Promise<StateEntry[]> {
    if (snapshotNid === 0) return [];
    const out: StateEntry[] = [];
    let level = [snapshotNid];
    while (level.length > 0) {
      const nodes = await this.nodes(level);
      const next: number[] = [];
      for (const nid of level) {
        const n = nodes.get(nid)!;
        if (n.kind === 'leaf') out.push(...n.entries);
        else next.push(...n.children.values());
      }
      level = next;
    }
    return out.sort(compareEntries);
  }

  /** The event NIDs for some (type, state key) pairs of a snapshot, walking only their paths. */
  async lookup(snapshotNid: number, keys: ReadonlyArray<{ typeNid: number; stateKeyNid: number }>): Promise<Map<number, number>> {
    const found = new Map<number, number>();
    if (snapshotNid === 0 || keys.length === 0) return found;
    let frontier: Array<{ nid: number; depth: number; keys: Array<{ typeNid: number; stateKeyNid: number }> }> = [{ nid: snapshotNid, depth: 0, keys: [...keys] }];
    while (frontier.length > 0) {
      const nodes = await this.nodes(frontier.map((f) => f.nid));
      const next: typeof frontier = [];
      for (const f of frontier) {
        const n = nodes.get(f.nid)!;
        if (n.kind === 'leaf') {
          const wanted = new Set(f.keys.map((k) => stateKey(k.typeNid, k.stateKeyNid)));
          for (const e of n.entries) if (wanted.has(stateKey(e.typeNid, e.stateKeyNid))) found.set(stateKey(e.typeNid, e.stateKeyNid), e.eventNid);
          continue;
        }
        const bySlot = new Map<number, Array<{ typeNid: number; stateKeyNid: number }>>();
        for (const k of f.keys) {
          const s = slotOf(k, f.depth);
          if (n.children.has(s)) bySlot.set(s, [...(bySlot.get(s) ?? []), k]);
        }
        for (const [s, ks] of bySlot) next.push({ nid: n.children.get(s)!, depth: f.depth + 1, keys: ks });
      }
      frontier = next;
    }
    return found;
  }

  /** Stores a whole state; returns its snapshot NID (the same NID for the same state). */
  async store(roomNid: number, entries: readonly StateEntry[]): Promise<number> {
    const unique = new Map<number, StateEntry>();
    for (const e of entries) unique.set(stateKey(e.typeNid, e.stateKeyNid), e);
    if (unique.size === 0) return 0;
    // Bottom-up, one batch of writes per level.
    return this.build(roomNid, [...unique.values()], 0);
  }

  private async build(roomNid: number, entries: StateEntry[], depth: number): Promise<number> {
    if (entries.length <= LEAF_MAX || depth >= MAX_DEPTH) {
      return (await this.put(roomNid, [encodeLeaf([...entries].sort(compareEntries))]))[0]!;
    }
    const groups = new Map<number, StateEntry[]>();
    for (const e of entries) {
      const s = slotOf(e, depth);
      let g = groups.get(s);
      if (!g) groups.set(s, (g = []));
      g.push(e);
    }
    // Children that are leaves are written in one batch; bigger ones recurse.
    const children = new Map<number, number>();
    const leafSlots: number[] = [];
    const leafBytes: Buffer[] = [];
    for (const [s, g] of groups) {
      if (g.length <= LEAF_MAX || depth + 1 >= MAX_DEPTH) {
        leafSlots.push(s);
        leafBytes.push(encodeLeaf(g.sort(compareEntries)));
      } else {
        children.set(s, await this.build(roomNid, g, depth + 1));
      }
    }
    const leafNids = await this.put(roomNid, leafBytes);
    leafSlots.forEach((s, i) => children.set(s, leafNids[i]!));
    return (await this.put(roomNid, [encodeInner(entries.length, children)]))[0]!;
  }

  /**
   * A new snapshot from `baseNid` with some entries replaced, added or (eventNid null) removed.
   * Only the nodes on the changed paths are written.
   */
  async apply(roomNid: number, baseNid: number, changes: ReadonlyArray<{ typeNid: number; stateKeyNid: number; eventNid: number | null }>): Promise<number> {
    if (changes.length === 0) return baseNid;
    if (baseNid === 0) return this.store(roomNid, changes.filter((c): c is StateEntry => c.eventNid !== null));
    const last = new Map<number, { typeNid: number; stateKeyNid: number; eventNid: number | null }>();
    for (const c of changes) last.set(stateKey(c.typeNid, c.stateKeyNid), c);
    return this.applyAt(roomNid, baseNid, [...last.values()], 0);
  }

  private async applyAt(roomNid: number, nid: number, changes: Array<{ typeNid: number; stateKeyNid: number; eventNid: number | null }>, depth: number): Promise<number> {
    const node = (await this.nodes([nid])).get(nid)!;
    if (node.kind === 'leaf') {
      const map = new Map(node.entries.map((e) => [stateKey(e.typeNid, e.stateKeyNid), e]));
      for (const c of changes) {
        const k = stateKey(c.typeNid, c.stateKeyNid);
        if (c.eventNid === null) map.delete(k);
        else map.set(k, { typeNid: c.typeNid, stateKeyNid: c.stateKeyNid, eventNid: c.eventNid });
      }
      return map.size === 0 ? 0 : this.build(roomNid, [...map.values()], depth);
    }
    const bySlot = new Map<number, typeof changes>();
    for (const c of changes) {
      const s = slotOf(c, depth);
      bySlot.set(s, [...(bySlot.get(s) ?? []), c]);
    }
    const children = new Map(node.children);
    const childNodes = await this.nodes([...bySlot.keys()].filter((s) => children.has(s)).map((s) => children.get(s)!));
    let count = node.count;
    for (const [s, cs] of bySlot) {
      const childNid = children.get(s);
      const before = childNid === undefined ? 0 : countOf(childNodes.get(childNid)!);
      let after: number;
      if (childNid !== undefined) after = await this.applyAt(roomNid, childNid, cs, depth + 1);
      else {
        const added = cs.filter((c): c is StateEntry => c.eventNid !== null);
        after = added.length === 0 ? 0 : await this.build(roomNid, added, depth + 1);
      }
      const afterCount = after === 0 ? 0 : countOf((await this.nodes([after])).get(after)!);
      count += afterCount - before;
      if (after === 0) children.delete(s);
      else children.set(s, after);
    }
    // Small enough again: the canonical shape is a single leaf.
    if (count <= LEAF_MAX) {
      const all: StateEntry[] = [];
      for (const child of children.values()) all.push(...(await this.load(child)));
      return all.length === 0 ? 0 : this.build(roomNid, all, depth);
    }
    return (await this.put(roomNid, [encodeInner(count, children)]))[0]!;
  }

  /**
   * What changes from snapshot `a` to snapshot `b`: entries only in `b` or changed (added, with
   * their new event) and only in `a` or changed (removed, with their old event). Subtrees the
   * two share are skipped, so the cost follows the size of the change, not of the state.
   */
  async diff(a: number, b: number): Promise<{ added: StateEntry[]; removed: StateEntry[] }> {
    const added: StateEntry[] = [];
    const removed: StateEntry[] = [];
    await this.diffInto(a, b, added, removed);
    return { added: added.sort(compareEntries), removed: removed.sort(compareEntries) };
  }

  private async diffInto(a: number, b: number, added: StateEntry[], removed: StateEntry[]): Promise<void> {
    if (a === b) return;
    if (a !== 0 && b !== 0) {
      const nodes = await this.nodes([a, b]);
      const na = nodes.get(a)!;
      const nb = nodes.get(b)!;
      if (na.kind === 'inner' && nb.kind === 'inner') {
        for (const slot of new Set([...na.children.keys(), ...nb.children.keys()])) {
          await this.diffInto(na.children.get(slot) ?? 0, nb.children.get(slot) ?? 0, added, removed);
        }
        return;
      }
    }
    const before = new Map((await this.load(a)).map((e) => [stateKey(e.typeNid, e.stateKeyNid), e]));
    for (const e of await this.load(b)) {
      const k = stateKey(e.typeNid, e.stateKeyNid);
      const old = before.get(k);
      if (old?.eventNid === e.eventNid) {
        before.delete(k);
        continue;
      }
      added.push(e);
      if (old) {
        removed.push(old);
        before.delete(k);
      }
    }
    removed.push(...before.values());
  }

  /**
   * Deletes the room's nodes that no snapshot in `roots` reaches. Returns how many were
   * deleted. The caller holds the room's input lock (see the module comment).
   */
  async collectGarbage(roomNid: number, roots: readonly number[]): Promise<number> {
    const reachable = new Set<number>();
    let level = [...new Set(roots.filter((r) => r !== 0))];
    while (level.length > 0) {
      for (const nid of level) reachable.add(nid);
      const nodes = await this.nodes(level);
      const next: number[] = [];
      for (const n of nodes.values()) if (n.kind === 'inner') for (const c of n.children.values()) if (!reachable.has(c)) next.push(c);
      level = [...new Set(next)];
    }
    const all = await this.db.selectFrom('roomserver_state_nodes').select('state_node_nid').where('room_nid', '=', roomNid).execute();
    const dead = all.map((r) => Number(r.state_node_nid)).filter((nid) => !reachable.has(nid));
    await inChunks(dead, (chunk) => this.db.deleteFrom('roomserver_state_nodes').where('state_node_nid', 'in', chunk).execute().then(() => []));
    for (const nid of dead) this.cache.delete(nid);
    return dead.length;
  }
}
