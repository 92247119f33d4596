import { describe, expect, it } from 'vitest';
import { Event, type PDUJson } from '../matrix/index.js';
import { defaultRuleset } from './defaults.js';
import { compileCondition, compileRuleset, globRegExp, outcomeOf, RulesetCache, senderMayNotify, splitKeyPath, type EvaluationContext, type PushEvent } from './evaluate.js';
import { putRule, rulesetFromAccountData, updateRule } from './ruleset.js';
import type { PushCondition, Ruleset } from './types.js';

const ME = '@alice:example.org';
const ROOM = '!room:example.org';

function ctx(o: Partial<{ members: number; name: string | null; mayNotify: boolean }> = {}): EvaluationContext {
  return { memberCount: () => o.members ?? 5, displayName: () => o.name ?? 'Alice Liddell', senderMayNotify: () => o.mayNotify ?? true };
}
const msg = (body: string, extra: Record<string, unknown> = {}): PushEvent => ({ type: 'm.room.message', room_id: ROOM, sender: '@bob:example.org', content: { msgtype: 'm.text', body, ...extra } });
const ruleFor = (e: PushEvent, c = ctx(), r: Ruleset = defaultRuleset(ME)) => compileRuleset(r).evaluate(e, c);

describe('predefined rules (spec v1.12), each in its place', () => {
  it('.m.rule.master: disabled by default; enabled it silences everything', () => {
    expect(ruleFor(msg('hi'))?.ruleId).toBe('.m.rule.message');
    const r = updateRule(defaultRuleset(ME), 'override', '.m.rule.master', { enabled: true }) as Ruleset;
    expect(ruleFor(msg('hi'), ctx(), r)).toMatchObject({ ruleId: '.m.rule.master', notify: false });
  });
  it('.m.rule.suppress_notices', () => {
    expect(ruleFor(msg('bot says', { msgtype: 'm.notice' }))).toMatchObject({ ruleId: '.m.rule.suppress_notices', notify: false });
  });
  it('.m.rule.invite_for_me and .m.rule.member_event', () => {
    const invite = { type: 'm.room.member', state_key: ME, sender: '@bob:example.org', room_id: ROOM, content: { membership: 'invite' } };
    expect(ruleFor(invite)).toMatchObject({ ruleId: '.m.rule.invite_for_me', notify: true, highlight: false, tweaks: { sound: 'default' } });
    expect(ruleFor({ ...invite, state_key: '@carol:example.org' })).toMatchObject({ ruleId: '.m.rule.member_event', notify: false });
    expect(ruleFor({ ...invite, content: { membership: 'join' }, state_key: '@bob:example.org' })).toMatchObject({ ruleId: '.m.rule.member_event', notify: false });
  });
  it('.m.rule.is_user_mention', () => {
    expect(ruleFor(msg('hey', { 'm.mentions': { user_ids: [ME] } }))).toMatchObject({ ruleId: '.m.rule.is_user_mention', notify: true, highlight: true, tweaks: { sound: 'default' } });
    expect(ruleFor(msg('hey', { 'm.mentions': { user_ids: ['@carol:example.org'] } }))?.ruleId).toBe('.m.rule.message');
  });
  it('.m.rule.contains_display_name', () => {
    expect(ruleFor(msg('hello alice liddell!'))).toMatchObject({ ruleId: '.m.rule.contains_display_name', highlight: true });
    expect(ruleFor(msg('hello Liddellx'), ctx({ name: 'Liddell' }))?.ruleId).toBe('.m.rule.message');
    expect(ruleFor(msg('hello'), ctx({ name: null }))?.ruleId).toBe('.m.rule.message');
  });
  it('.m.rule.is_room_mention needs the power to notify the room', () => {
    const e = msg('all', { 'm.mentions': { room: true } });
    expect(ruleFor(e)).toMatchObject({ ruleId: '.m.rule.is_room_mention', notify: true, highlight: true, tweaks: {} });
    expect(ruleFor(e, ctx({ mayNotify: false }))?.ruleId).toBe('.m.rule.message');
  });
  it('.m.rule.roomnotif', () => {
    expect(ruleFor(msg('hey @room look'))).toMatchObject({ ruleId: '.m.rule.roomnotif', highlight: true });
    expect(ruleFor(msg('hey @room look'), ctx({ mayNotify: false }))?.ruleId).toBe('.m.rule.message');
    expect(ruleFor(msg('hey @roomy'))?.ruleId).toBe('.m.rule.message');
  });
  it('.m.rule.tombstone only for the state event', () => {
    const t = { type: 'm.room.tombstone', state_key: '', room_id: ROOM, sender: '@bob:example.org', content: { body: 'moved', replacement_room: '!new:x' } };
    expect(ruleFor(t)).toMatchObject({ ruleId: '.m.rule.tombstone', notify: true, highlight: true });
    const { state_key: _, ...notState } = t;
    expect(ruleFor(notState)).toBeUndefined();
  });
  it('.m.rule.reaction', () => {
    expect(ruleFor({ type: 'm.reaction', room_id: ROOM, sender: '@bob:example.org', content: {} })).toMatchObject({ ruleId: '.m.rule.reaction', notify: false });
  });
  it('.m.rule.room.server_acl', () => {
    expect(ruleFor({ type: 'm.room.server_acl', state_key: '', room_id: ROOM, sender: '@bob:example.org', content: {} })).toMatchObject({ ruleId: '.m.rule.room.server_acl', notify: false });
  });
  it('.m.rule.suppress_edits', () => {
    expect(ruleFor(msg('* fixed', { 'm.relates_to': { rel_type: 'm.replace', event_id: '$x' } }))).toMatchObject({ ruleId: '.m.rule.suppress_edits', notify: false });
  });
  it('.m.rule.contains_user_name (content)', () => {
    expect(ruleFor(msg('ping ALICE, please'))).toMatchObject({ ruleId: '.m.rule.contains_user_name', kind: 'content', highlight: true, tweaks: { sound: 'default' } });
    expect(ruleFor(msg('malice'))?.ruleId).toBe('.m.rule.message');
  });
  it('.m.rule.call', () => {
    expect(ruleFor({ type: 'm.call.invite', room_id: ROOM, sender: '@bob:example.org', content: {} })).toMatchObject({ ruleId: '.m.rule.call', notify: true, tweaks: { sound: 'ring' } });
  });
  it('.m.rule.encrypted_room_one_to_one and .m.rule.encrypted', () => {
    const e = { type: 'm.room.encrypted', room_id: ROOM, sender: '@bob:example.org', content: { ciphertext: 'x' } };
    expect(ruleFor(e, ctx({ members: 2 }))).toMatchObject({ ruleId: '.m.rule.encrypted_room_one_to_one', notify: true, tweaks: { sound: 'default' } });
    expect(ruleFor(e, ctx({ members: 3 }))).toMatchObject({ ruleId: '.m.rule.encrypted', notify: true, tweaks: {} });
  });
  it('.m.rule.room_one_to_one and .m.rule.message', () => {
    expect(ruleFor(msg('hi'), ctx({ members: 2 }))).toMatchObject({ ruleId: '.m.rule.room_one_to_one', tweaks: { sound: 'default' } });
    expect(ruleFor(msg('hi'), ctx({ members: 3 }))).toMatchObject({ ruleId: '.m.rule.message', notify: true, highlight: false });
  });
  it('other events match nothing', () => {
    expect(ruleFor({ type: 'm.room.topic', state_key: '', room_id: ROOM, sender: '@bob:example.org', content: { topic: 'x' } })).toBeUndefined();
  });
});

describe('rule kinds and order', () => {
  it('room, sender and content rules, user rules before predefined ones; dont_notify is no action', () => {
    let r = rulesetFromAccountData(undefined, ME);
    r = putRule(r, 'room', ROOM, { actions: ['dont_notify'] }, {}) as Ruleset;
    expect(ruleFor(msg('hi'), ctx(), r)).toMatchObject({ ruleId: ROOM, kind: 'room', notify: false, actions: [] });
    r = putRule(r, 'sender', '@bob:example.org', { actions: ['notify'] }, {}) as Ruleset;
    expect(ruleFor(msg('hi'), ctx(), r)?.ruleId).toBe(ROOM);
    r = putRule(r, 'content', 'cake', { actions: ['notify', { set_tweak: 'highlight', value: false }], pattern: 'cake*lie' }, {}) as Ruleset;
    expect(ruleFor(msg('the cake is a lie'), ctx(), r)).toMatchObject({ ruleId: 'cake', highlight: false, notify: true });
    // A mention still wins (override).
    expect(ruleFor(msg('x', { 'm.mentions': { user_ids: [ME] } }), ctx(), r)?.ruleId).toBe('.m.rule.is_user_mention');
  });
  it('disabled rules never match', () => {
    const r = updateRule(defaultRuleset(ME), 'underride', '.m.rule.message', { enabled: false }) as Ruleset;
    expect(ruleFor(msg('hi'), ctx(), r)).toBeUndefined();
  });
});

describe('conditions', () => {
  const m = (c: PushCondition, e: PushEvent, cx = ctx()) => compileCondition(c)(e, cx);
  it('event_match: globs over the whole value, ignoring case; strings only', () => {
    const topic = { type: 'm.room.topic', content: { topic: 'Lunch plans', n: 5 } };
    expect(m({ kind: 'event_match', key: 'content.topic', pattern: 'lunc?*' }, topic)).toBe(true);
    expect(m({ kind: 'event_match', key: 'content.topic', pattern: 'lunc' }, topic)).toBe(false);
    expect(m({ kind: 'event_match', key: 'content.topic', pattern: 'LUNCH PLANS' }, topic)).toBe(true);
    expect(m({ kind: 'event_match', key: 'content.n', pattern: '*' }, topic)).toBe(false);
    expect(m({ kind: 'event_match', key: 'content.missing', pattern: '*' }, topic)).toBe(false);
    expect(m({ kind: 'event_match', key: 'type', pattern: 'm.room.*' }, topic)).toBe(true);
    expect(m({ kind: 'event_match', key: 'type', pattern: 'm_room_topic' }, topic)).toBe(false);
    expect(m({ kind: 'event_match', key: 'content.topic', pattern: '[kl]unch*' }, topic)).toBe(true);
    expect(m({ kind: 'event_match', key: 'content.topic', pattern: '[!l]unch*' }, topic)).toBe(false);
    expect(m({ kind: 'event_match', key: 'type' } as PushCondition, topic)).toBe(false);
  });
  it('event_match on content.body: any run between word boundaries', () => {
    const c = { kind: 'event_match', key: 'content.body', pattern: 'ex*ple' };
    expect(m(c, msg('An example event.'))).toBe(true);
    expect(m(c, msg('exple'))).toBe(true);
    expect(m(c, msg('An exciting triple-whammy'))).toBe(true);
    expect(m(c, msg('examples'))).toBe(false);
    expect(m(c, msg('an_example'))).toBe(false);
    expect(globRegExp('a.b', true).test('axb')).toBe(false);
  });
  it('dotted key paths with escapes', () => {
    expect(splitKeyPath('content.m\\.relates_to.rel_type')).toEqual(['content', 'm.relates_to', 'rel_type']);
    expect(splitKeyPath('a\\\\.b')).toEqual(['a\\', 'b']);
    expect(m({ kind: 'event_match', key: 'content.m\\.x', pattern: 'y' }, { content: { 'm.x': 'y', m: { x: 'n' } } })).toBe(true);
  });
  it('event_property_is: exact scalars, no casting', () => {
    const e = { type: 'm.room.create', content: { 'm.federate': true, n: 1, s: 'true', z: null, o: { a: 1 } } };
    expect(m({ kind: 'event_property_is', key: 'content.m\\.federate', value: true }, e)).toBe(true);
    expect(m({ kind: 'event_property_is', key: 'content.s', value: true }, e)).toBe(false);
    expect(m({ kind: 'event_property_is', key: 'content.n', value: true }, e)).toBe(false);
    expect(m({ kind: 'event_property_is', key: 'content.n', value: 1 }, e)).toBe(true);
    expect(m({ kind: 'event_property_is', key: 'content.z', value: null }, e)).toBe(true);
    expect(m({ kind: 'event_property_is', key: 'content.gone', value: null }, e)).toBe(false);
    expect(m({ kind: 'event_property_is', key: 'content.o', value: { a: 1 } }, e)).toBe(false);
  });
  it('event_property_contains: an array holding the exact value', () => {
    const e = { content: { alt_aliases: ['#somewhere:example.org', '#myroom:example.com', { x: 1 }], notarray: '#myroom:example.com' } };
    expect(m({ kind: 'event_property_contains', key: 'content.alt_aliases', value: '#myroom:example.com' }, e)).toBe(true);
    expect(m({ kind: 'event_property_contains', key: 'content.alt_aliases', value: ':example.com' }, e)).toBe(false);
    expect(m({ kind: 'event_property_contains', key: 'content.notarray', value: '#myroom:example.com' }, e)).toBe(false);
  });
  it('contains_display_name: word-bounded, any case, special characters literal', () => {
    const c = { kind: 'contains_display_name' };
    expect(m(c, msg('hi (a+b)!'), ctx({ name: '(a+b)' }))).toBe(true);
    expect(m(c, msg('hi aab'), ctx({ name: 'a+b' }))).toBe(false);
    expect(m(c, msg('hi'), ctx({ name: '' }))).toBe(false);
    expect(m(c, { content: { body: 5 } }, ctx({ name: 'x' }))).toBe(false);
  });
  it('room_member_count: ==, <, >, <=, >= and no prefix', () => {
    const at = (is: string, n: number) => m({ kind: 'room_member_count', is }, msg(''), ctx({ members: n }));
    expect([at('2', 2), at('==2', 2), at('2', 3)]).toEqual([true, true, false]);
    expect([at('<3', 2), at('<3', 3), at('>3', 4), at('>3', 3)]).toEqual([true, false, true, false]);
    expect([at('<=3', 3), at('<=3', 4), at('>=3', 3), at('>=3', 2)]).toEqual([true, false, true, false]);
    expect(at('two', 2)).toBe(false);
  });
  it('sender_notification_permission asks the context; unknown kinds never match', () => {
    expect(m({ kind: 'sender_notification_permission', key: 'room' }, msg(''), ctx({ mayNotify: true }))).toBe(true);
    expect(m({ kind: 'sender_notification_permission', key: 'room' }, msg(''), ctx({ mayNotify: false }))).toBe(false);
    expect(m({ kind: 'org.example.future' }, msg(''))).toBe(false);
  });
});

describe('sender_notification_permission against power levels, per room version', () => {
  const ev = (roomVersion: string, type: string, sender: string, content: Record<string, unknown>) =>
    Event.fromPDU({ type, state_key: '', sender, ...(roomVersion === '12' ? (type === 'm.room.create' ? {} : { room_id: `!${'A'.repeat(43)}` }) : { room_id: ROOM }), content, prev_events: [], auth_events: [], depth: 1, origin_server_ts: 1, hashes: { sha256: 'x' }, signatures: {} } as unknown as PDUJson, roomVersion);
  it('reads notifications.room (default 50), string levels before v10 only, creators in v12', () => {
    const pl9 = ev('9', 'm.room.power_levels', '@bob:example.org', { users: { '@bob:example.org': '60', '@carol:example.org': 40 } });
    const create9 = ev('9', 'm.room.create', '@bob:example.org', { creator: '@bob:example.org' });
    expect(senderMayNotify('@bob:example.org', 'room', pl9, create9)).toBe(true);
    expect(senderMayNotify('@carol:example.org', 'room', pl9, create9)).toBe(false);
    const pl10 = ev('10', 'm.room.power_levels', '@bob:example.org', { users: { '@bob:example.org': '60' }, notifications: { room: 10 }, users_default: 20 });
    expect(senderMayNotify('@bob:example.org', 'room', pl10, undefined)).toBe(true); // "60" ignored in v10: users_default 20 >= 10
    const pl10b = ev('10', 'm.room.power_levels', '@bob:example.org', { users: { '@bob:example.org': '60' } });
    expect(senderMayNotify('@bob:example.org', 'room', pl10b, undefined)).toBe(false);
    expect(senderMayNotify('@bob:example.org', 'other', pl10b, undefined)).toBe(false);
    const create12 = ev('12', 'm.room.create', '@bob:example.org', {});
    const pl12 = ev('12', 'm.room.power_levels', '@bob:example.org', { users: {} });
    expect(senderMayNotify('@bob:example.org', 'room', pl12, create12)).toBe(true);
    // No power levels event: the creator has 100.
    expect(senderMayNotify('@bob:example.org', 'room', undefined, create9)).toBe(true);
    expect(senderMayNotify('@carol:example.org', 'room', undefined, create9)).toBe(false);
  });
});

describe('outcomes and the cache', () => {
  it('strips historical actions and reads tweaks', () => {
    expect(outcomeOf(['notify', 'coalesce', { set_tweak: 'sound', value: 'x' }, { set_tweak: 'highlight' }])).toMatchObject({ actions: ['notify', { set_tweak: 'sound', value: 'x' }, { set_tweak: 'highlight' }], notify: true, highlight: true, tweaks: { sound: 'x' } });
    expect(outcomeOf(['dont_notify'])).toMatchObject({ actions: [], notify: false, highlight: false });
  });
  it('compiles once per user until invalidated', async () => {
    let loads = 0;
    const cache = new RulesetCache(async (u) => {
      loads++;
      return defaultRuleset(u);
    }, 2);
    const a = await cache.get(ME);
    expect(await cache.get(ME)).toBe(a);
    expect(loads).toBe(1);
    cache.invalidate(ME);
    expect(await cache.get(ME)).not.toBe(a);
    await cache.get('@b:x');
    await cache.get('@c:x');
    expect(cache.size).toBe(2);
  });
});
