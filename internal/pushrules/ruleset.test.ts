import { describe, expect, it } from 'vitest';
import { defaultRuleset } from './defaults.js';
import { deleteRule, findRule, isRuleError, putRule, rulesetFromAccountData, rulesetToAccountData, updateRule, type RuleError } from './ruleset.js';
import type { Ruleset } from './types.js';

const ME = '@alice:example.org';
const ids = (r: Ruleset, kind: keyof Ruleset) => r[kind].map((x) => x.rule_id);
const ok = (r: Ruleset | RuleError): Ruleset => {
  if (isRuleError(r)) throw new Error(r.errcode);
  return r as Ruleset;
};

describe('push rulesets', () => {
  it('defaults to the spec predefined rules, in order, naming the user', () => {
    const r = rulesetFromAccountData(undefined, ME);
    expect(ids(r, 'override')).toEqual([
      '.m.rule.master',
      '.m.rule.suppress_notices',
      '.m.rule.invite_for_me',
      '.m.rule.member_event',
      '.m.rule.is_user_mention',
      '.m.rule.contains_display_name',
      '.m.rule.is_room_mention',
      '.m.rule.roomnotif',
      '.m.rule.tombstone',
      '.m.rule.reaction',
      '.m.rule.room.server_acl',
      '.m.rule.suppress_edits',
    ]);
    expect(ids(r, 'underride')).toEqual(['.m.rule.call', '.m.rule.encrypted_room_one_to_one', '.m.rule.room_one_to_one', '.m.rule.message', '.m.rule.encrypted']);
    expect(r.content).toEqual([{ rule_id: '.m.rule.contains_user_name', default: true, enabled: true, actions: ['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }], pattern: 'alice' }]);
    expect(findRule(r, 'override', '.m.rule.master')).toMatchObject({ enabled: false, actions: [] });
    expect(findRule(r, 'override', '.m.rule.invite_for_me')!.conditions).toContainEqual({ kind: 'event_match', key: 'state_key', pattern: ME });
    expect(findRule(r, 'override', '.m.rule.is_user_mention')!.conditions).toEqual([{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: ME }]);
    expect(r.room).toEqual([]);
    expect(r.sender).toEqual([]);
  });

  it('keeps user rules after the master rule and before other predefined rules, placed by before/after', () => {
    let r = rulesetFromAccountData(undefined, ME);
    r = ok(putRule(r, 'override', 'a', { actions: ['notify'], conditions: [{ kind: 'event_match', key: 'type', pattern: 'x' }] }, {}));
    r = ok(putRule(r, 'override', 'b', { actions: [] }, {}));
    r = ok(putRule(r, 'override', 'c', { actions: [] }, { after: 'a' }));
    r = ok(putRule(r, 'override', 'd', { actions: [] }, { before: 'b' }));
    expect(ids(r, 'override').slice(0, 6)).toEqual(['.m.rule.master', 'd', 'b', 'a', 'c', '.m.rule.suppress_notices']);
    // Replacing keeps the place and the enabled flag.
    r = ok(updateRule(r, 'override', 'a', { enabled: false }));
    r = ok(putRule(r, 'override', 'a', { actions: ['notify'] }, {}));
    expect(ids(r, 'override').slice(0, 5)).toEqual(['.m.rule.master', 'd', 'b', 'a', 'c']);
    expect(findRule(r, 'override', 'a')).toEqual({ rule_id: 'a', default: false, enabled: false, actions: ['notify'], conditions: [] });
  });

  it('round-trips through account data, laying the user part over current defaults', () => {
    let r = rulesetFromAccountData(undefined, ME);
    r = ok(putRule(r, 'room', '!room:example.org', { actions: [] }, {}));
    r = ok(putRule(r, 'content', 'cats', { actions: ['notify'], pattern: 'cat*' }, {}));
    r = ok(updateRule(r, 'override', '.m.rule.master', { enabled: true }));
    r = ok(updateRule(r, 'underride', '.m.rule.message', { actions: [] }));
    const stored = rulesetToAccountData(r);
    // A predefined rule that this version no longer has, and one the user must not fake.
    (stored.global as Ruleset).override.push({ rule_id: '.m.rule.gone', default: true, enabled: true, actions: [] }, { rule_id: '.m.rule.fake', default: false, enabled: true, actions: ['notify'] });
    const back = rulesetFromAccountData(JSON.parse(JSON.stringify(stored)), ME);
    expect(findRule(back, 'override', '.m.rule.master')!.enabled).toBe(true);
    expect(findRule(back, 'underride', '.m.rule.message')!.actions).toEqual([]);
    expect(ids(back, 'room')).toEqual(['!room:example.org']);
    expect(ids(back, 'content')).toEqual(['cats', '.m.rule.contains_user_name']);
    expect(findRule(back, 'override', '.m.rule.gone')).toBeUndefined();
    expect(findRule(back, 'override', '.m.rule.fake')).toBeUndefined();
    expect(ids(back, 'override').length).toBe(defaultRuleset(ME).override.length);
  });

  it('refuses bad rules with the right error', () => {
    const r = rulesetFromAccountData(undefined, ME);
    const err = (x: unknown) => (isRuleError(x) ? x.errcode : 'ok');
    expect(err(putRule(r, 'override', '.m.rule.mine', { actions: [] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'override', 'x', { actions: ['shout'] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'override', 'x', { actions: 'notify' }, {}))).toBe('M_BAD_JSON');
    expect(err(putRule(r, 'override', 'x', { actions: [], conditions: [{ kind: 'event_match', key: 'type' }] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'underride', 'x', { actions: [], conditions: [{ kind: 'room_member_count', is: 'two' }] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'content', 'x', { actions: [] }, {}))).toBe('M_MISSING_PARAM');
    expect(err(putRule(r, 'room', ' ', { actions: [] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'sender', '', { actions: [] }, {}))).toBe('M_INVALID_PARAM');
    expect(err(putRule(r, 'override', 'x', { actions: [] }, { before: '.m.rule.master' }))).toBe('M_NOT_FOUND');
    expect(err(deleteRule(r, 'override', '.m.rule.master'))).toBe('M_INVALID_PARAM');
    expect(err(deleteRule(r, 'override', 'nope'))).toBe('M_NOT_FOUND');
    expect(err(updateRule(r, 'content', 'nope', { enabled: true }))).toBe('M_NOT_FOUND');
  });
});
