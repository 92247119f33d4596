/**
 * The spec's predefined push rules (Client-Server API, "Predefined Rules"), in their order.
 * They depend on the user: their ID and localpart appear in conditions.
 */
import type { PushAction, PushRule, Ruleset } from './types.js';

const notify = 'notify';
const soundDefault: PushAction = { set_tweak: 'sound', value: 'default' };
const highlight: PushAction = { set_tweak: 'highlight' };

function rule(rule_id: string, actions: PushAction[], conditions: PushRule['conditions'], enabled = true): PushRule {
  return { rule_id, default: true, enabled, actions, conditions: conditions ?? [] };
}

const match = (key: string, pattern: string) => ({ kind: 'event_match', key, pattern });

export function defaultRuleset(userId: string): Ruleset {
  const localpart = userId.slice(1, userId.indexOf(':'));
  return {
    override: [
      rule('.m.rule.master', [], [], false),
      rule('.m.rule.suppress_notices', [], [match('content.msgtype', 'm.notice')]),
      rule('.m.rule.invite_for_me', [notify, soundDefault], [match('type', 'm.room.member'), match('content.membership', 'invite'), match('state_key', userId)]),
      rule('.m.rule.member_event', [], [match('type', 'm.room.member')]),
      rule('.m.rule.is_user_mention', [notify, soundDefault, highlight], [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }]),
      rule('.m.rule.contains_display_name', [notify, soundDefault, highlight], [{ kind: 'contains_display_name' }]),
      rule('.m.rule.is_room_mention', [notify, highlight], [
        { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
        { kind: 'sender_notification_permission', key: 'room' },
      ]),
      rule('.m.rule.roomnotif', [notify, highlight], [match('content.body', '@room'), { kind: 'sender_notification_permission', key: 'room' }]),
      rule('.m.rule.tombstone', [notify, highlight], [match('type', 'm.room.tombstone'), match('state_key', '')]),
      rule('.m.rule.reaction', [], [match('type', 'm.reaction')]),
      rule('.m.rule.room.server_acl', [], [match('type', 'm.room.server_acl'), match('state_key', '')]),
      rule('.m.rule.suppress_edits', [], [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }]),
    ],
    content: [{ rule_id: '.m.rule.contains_user_name', default: true, enabled: true, actions: [notify, soundDefault, highlight], pattern: localpart }],
    room: [],
    sender: [],
    underride: [
      rule('.m.rule.call', [notify, { set_tweak: 'sound', value: 'ring' }], [match('type', 'm.call.invite')]),
      rule('.m.rule.encrypted_room_one_to_one', [notify, soundDefault], [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.encrypted')]),
      rule('.m.rule.room_one_to_one', [notify, soundDefault], [{ kind: 'room_member_count', is: '2' }, match('type', 'm.room.message')]),
      rule('.m.rule.message', [notify], [match('type', 'm.room.message')]),
      rule('.m.rule.encrypted', [notify], [match('type', 'm.room.encrypted')]),
    ],
  };
}
