/**
 * Creating a room: the events `POST /createRoom` implies, in the spec's order (create, the
 * creator's join, power levels, canonical alias, the preset's join rules / history visibility
 * / guest access, initial_state, name, topic, invites), each built on the one before with its
 * auth events taken from the state so far, signed as this server and put through the input
 * pipeline like any other event.
 */
import { authEventTypesNeeded } from '../../../internal/matrix/auth/index.js';
import { roomVersion as lookupRoomVersion, stateTuple, type Event, type JsonObject, type PDUJson } from '../../../internal/matrix/index.js';
import type { SigningIdentity } from '../../../internal/signingidentity.js';
import type { InputRoomEvent, PerformCreateRoomRequest, PerformCreateRoomResponse } from '../../api/index.js';
import type { Inputer } from '../input/inputer.js';

type Fields = { type: string; state_key?: string; content: JsonObject };

export class RoomCreator {
  constructor(
    private readonly identity: SigningIdentity,
    private readonly inputer: Inputer,
  ) {}

  async create(req: PerformCreateRoomRequest): Promise<PerformCreateRoomResponse> {
    const rv = lookupRoomVersion(req.room_version);
    if (!rv) return { error: 'unsupported_room_version', message: `room version ${req.room_version} is not supported` };
    const v12 = rv.roomIdFromCreateEvent;
    const creator = req.user_id;
    const trusted = req.preset === 'trusted_private_chat';
    const invitees = [...new Set(req.invite ?? [])].filter((u) => u !== creator);

    const createContent: JsonObject = { ...(req.creation_content ?? {}), room_version: rv.id };
    if (!rv.v11EventShape) createContent['creator'] = creator;
    else delete createContent['creator'];
    if (v12 && trusted && invitees.length > 0) createContent['additional_creators'] = invitees;

    // Power levels: the defaults Synapse and Dendrite use, then the caller's override.
    const users: JsonObject = {};
    if (!v12) users[creator] = 100;
    if (trusted && !v12) for (const u of invitees) users[u] = 100;
    const power: JsonObject = {
      users,
      users_default: 0,
      events: {
        'm.room.name': 50,
        'm.room.power_levels': 100,
        'm.room.history_visibility': 100,
        'm.room.canonical_alias': 50,
        'm.room.avatar': 50,
        'm.room.tombstone': 100,
        'm.room.server_acl': 100,
        'm.room.encryption': 100,
      },
      events_default: 0,
      state_default: 50,
      ban: 50,
      kick: 50,
      redact: 50,
      invite: req.preset === 'public_chat' ? 50 : 0,
      notifications: { room: 50 },
      ...(req.power_level_content_override ?? {}),
    };

    const plan: Fields[] = [
      { type: 'm.room.member', state_key: creator, content: { membership: 'join', ...(req.creator_profile ?? {}) } },
      { type: 'm.room.power_levels', state_key: '', content: power },
    ];
    if (req.canonical_alias !== undefined) plan.push({ type: 'm.room.canonical_alias', state_key: '', content: { alias: req.canonical_alias } });
    // The preset's defaults give way to initial_state of the same kind (as Synapse does): the room
    // then starts with the asked-for value rather than a default immediately replaced.
    const given = new Set((req.initial_state ?? []).map((st) => `${st.type}\u0000${st.state_key}`));
    const preset = (f: Fields): void => {
      if (!given.has(`${f.type}\u0000${f.state_key ?? ''}`)) plan.push(f);
    };
    preset({ type: 'm.room.join_rules', state_key: '', content: { join_rule: req.preset === 'public_chat' ? 'public' : 'invite' } });
    preset({ type: 'm.room.history_visibility', state_key: '', content: { history_visibility: 'shared' } });
    if (req.preset !== 'public_chat') preset({ type: 'm.room.guest_access', state_key: '', content: { guest_access: 'can_join' } });
    for (const s of req.initial_state ?? []) plan.push({ type: s.type, state_key: s.state_key, content: s.content });
    if (req.name !== undefined) plan.push({ type: 'm.room.name', state_key: '', content: { name: req.name } });
    if (req.topic !== undefined) plan.push({ type: 'm.room.topic', state_key: '', content: { topic: req.topic } });
    // Another server's user is invited once the room exists, over federation (their server signs the invite).
    for (const u of invitees.filter((i) => i.endsWith(`:${this.identity.serverName}`))) {
      plan.push({ type: 'm.room.member', state_key: u, content: { membership: 'invite', ...(req.is_direct ? { is_direct: true } : {}) } });
    }

    const state = new Map<string, Event>();
    let roomId = v12 ? undefined : req.room_id;
    if (!v12 && roomId === undefined) return { error: 'invalid', message: 'room_id is required before room version 12' };
    let prev: Event | undefined;
    const inputs: InputRoomEvent[] = [];
    const build = (f: Fields): Event => {
      const wanted = f.type === 'm.room.create' ? [] : authEventTypesNeeded({ type: f.type, stateKey: f.state_key, sender: creator, content: f.content, roomVersion: rv });
      const auth = wanted
        .map((w) => state.get(stateTuple(w.type, w.stateKey)))
        .filter((e): e is Event => e !== undefined)
        .filter((e) => !(v12 && e.type === 'm.room.create'));
      const event = this.identity.buildEvent(
        {
          type: f.type,
          ...(f.state_key !== undefined ? { state_key: f.state_key } : {}),
          sender: creator,
          ...(roomId !== undefined ? { room_id: roomId } : {}),
          content: f.content,
          prev_events: prev ? [prev.eventId] : [],
          auth_events: auth.map((a) => a.eventId),
          depth: (prev?.depth ?? 0) + 1,
        },
        rv.id,
      );
      if (f.state_key !== undefined) state.set(stateTuple(f.type, f.state_key), event);
      prev = event;
      inputs.push({ kind: 'new', event: { room_version: rv.id, pdu: event.json as PDUJson }, origin: this.identity.serverName });
      return event;
    };
    const create = build({ type: 'm.room.create', state_key: '', content: createContent });
    roomId = create.roomId;
    for (const f of plan) build(f);

    const results = await this.inputer.input(inputs);
    const failed = results.find((r) => r.status !== 'accepted');
    if (failed) return { error: 'refused', message: `${failed.event_id}: ${failed.status}${failed.error ? `: ${failed.error}` : ''}` };
    return { room_id: roomId };
  }
}
