/**
 * Test helper: builds signed events of one room, choosing each event's auth events from the
 * state the test says it is built on, as a homeserver would.
 */
import { authEventTypesNeeded } from '../../../internal/matrix/auth/index.js';
import { buildEvent, generateSigningKey, stateTuple, type Event, type JsonObject, type PDUJson, type SigningKey } from '../../../internal/matrix/index.js';
import type { InputKind, InputRoomEvent } from '../../api/index.js';

export class TestRoom {
  readonly key: SigningKey = generateSigningKey();
  /** The state each event was built after, by event ID (state after = this plus the event). */
  private readonly stateAfter = new Map<string, Map<string, Event>>();
  private readonly byId = new Map<string, Event>();
  roomId = '';
  create!: Event;

  constructor(
    readonly version: string,
    readonly server = 'hs.test',
    readonly creator = '@alice:hs.test',
  ) {}

  /** The create event, then the creator's join, power levels and public join rules. */
  start(extraPower: Record<string, number> = {}): Event[] {
    const v12 = this.version === '12';
    if (!v12) this.roomId = `!${Math.random().toString(36).slice(2, 12)}:${this.server}`;
    this.create = this.build({ type: 'm.room.create', state_key: '', sender: this.creator, content: { room_version: this.version, ...(v12 ? {} : { creator: this.creator }) } }, []);
    this.roomId = this.create.roomId;
    const join = this.build({ type: 'm.room.member', state_key: this.creator, sender: this.creator, content: { membership: 'join' } }, [this.create.eventId]);
    const power = this.build(
      { type: 'm.room.power_levels', state_key: '', sender: this.creator, content: { users: { ...(v12 ? {} : { [this.creator]: 100 }), ...extraPower }, users_default: 0, events_default: 0, state_default: 50, ban: 50, kick: 50 } },
      [join.eventId],
    );
    const rules = this.build({ type: 'm.room.join_rules', state_key: '', sender: this.creator, content: { join_rule: 'public' } }, [power.eventId]);
    return [this.create, join, power, rules];
  }

  /** An event after `prev` (event IDs), its auth events from the state after those (first prev wins ties). */
  build(fields: { type: string; state_key?: string; sender: string; content: JsonObject; redacts?: string }, prev: string[], opts: { authFrom?: string[] } = {}): Event {
    const state = new Map<string, Event>();
    for (const p of [...prev].reverse()) for (const [k, v] of this.stateAfter.get(p) ?? []) state.set(k, v);
    const authState = new Map<string, Event>();
    for (const p of [...(opts.authFrom ?? prev)].reverse()) for (const [k, v] of this.stateAfter.get(p) ?? []) authState.set(k, v);
    const wanted = fields.type === 'm.room.create' ? [] : authEventTypesNeeded({ ...fields, stateKey: fields.state_key, roomVersion: this.create.roomVersion });
    const auth = wanted
      .map((w) => authState.get(stateTuple(w.type, w.stateKey)))
      .filter((e): e is Event => e !== undefined)
      .filter((e) => !(this.version === '12' && e.type === 'm.room.create'));
    const depth = 1 + Math.max(0, ...prev.map((p) => this.byId.get(p)?.depth ?? 0));
    const event = buildEvent(
      {
        ...fields,
        ...(fields.type === 'm.room.create' && this.version === '12' ? {} : { room_id: this.roomId }),
        prev_events: prev,
        auth_events: auth.map((a) => a.eventId),
        depth,
      },
      this.version,
      this.server,
      this.key.keyId,
      this.key,
    );
    const after = new Map(state);
    if (event.stateKey !== undefined) after.set(stateTuple(event.type, event.stateKey), event);
    this.stateAfter.set(event.eventId, after);
    this.byId.set(event.eventId, event);
    return event;
  }

  input(event: Event, kind: InputKind = 'new'): InputRoomEvent {
    return { kind, event: { room_version: this.version, pdu: event.json as PDUJson } };
  }
}
