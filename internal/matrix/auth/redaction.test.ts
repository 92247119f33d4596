import { describe, expect, it } from 'vitest';
import type { JsonObject } from '../types.js';
import { redactionTakesEffect } from './redaction.js';
import { ALL_VERSIONS, BOB, CAROL, TestRoom, expectAllowed, expectDenied, mustVersion, versionsWhere } from './testing.js';

const v1v2 = versionsWhere((v) => v.eventFormat === 'v1');
const later = versionsWhere((v) => v.eventFormat !== 'v1');

/** Bob (0) and Carol (50, the redact level) are members; Bob has sent a message. */
function setup(v: string) {
  const room = TestRoom.genesis(v, { users: { [CAROL]: 50 } });
  room.member(BOB, 'join');
  room.member(CAROL, 'join');
  const bobMessage = room.send('m.room.message', undefined, BOB, { body: 'oops' });
  const aliceMessage = room.send('m.room.message', undefined, room.creator, { body: 'hi' });
  return { room, bobMessage, aliceMessage };
}

function redaction(room: TestRoom, sender: string, target: string, eventId?: string) {
  const content: JsonObject = room.version.v11EventShape ? { redacts: target } : {};
  return room.event('m.room.redaction', undefined, sender, content, { redacts: target, ...(eventId !== undefined ? { eventId } : {}) });
}

describe('the redaction auth rule (v1, v2)', () => {
  it.each(v1v2)('v%s: with the redact level, anything may be redacted', (v) => {
    const { room, bobMessage, aliceMessage } = setup(v);
    expectAllowed(() => room.check(redaction(room, CAROL, bobMessage.eventId)));
    expectAllowed(() => room.check(redaction(room, CAROL, aliceMessage.eventId)));
  });

  it.each(v1v2)('v%s: below it, only events whose ID has the redaction\'s server', (v) => {
    const { room, bobMessage, aliceMessage } = setup(v);
    expect(bobMessage.eventId.endsWith(':b.test')).toBe(true);
    expectAllowed(() => room.check(redaction(room, BOB, bobMessage.eventId)));
    expectDenied(() => room.check(redaction(room, BOB, aliceMessage.eventId)), /^m\.room\.redaction: @bob:b\.test \(level 0\) is below the redact level 50/);
  });

  it.each(v1v2)('v%s: it is the event IDs\' servers that count, not the senders\'', (v) => {
    const { room, aliceMessage } = setup(v);
    // A redaction by Bob whose ID (as minted by a.test) shares the server of Alice's message.
    expectAllowed(() => room.check(redaction(room, BOB, aliceMessage.eventId, '$minted:a.test')));
  });

  it.each(v1v2)('v%s: a redaction naming nothing is refused below the redact level', (v) => {
    const { room } = setup(v);
    expectDenied(() => room.check(room.event('m.room.redaction', undefined, BOB, {})), /\(no redacts\)/);
  });

  it.each(v1v2)('v%s: the required level of m.room.redaction applies first', (v) => {
    const { room, bobMessage } = setup(v);
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50 }, { events: { 'm.room.redaction': 10 } }));
    expectDenied(() => room.check(redaction(room, BOB, bobMessage.eventId)), /^power level: m\.room\.redaction needs level 10/);
  });
});

describe('redactions from v3 on: no auth rule, only the required level', () => {
  it.each(later)('v%s: any member may send a redaction for any event', (v) => {
    const { room, aliceMessage } = setup(v);
    expectAllowed(() => room.check(redaction(room, BOB, aliceMessage.eventId)));
    expectAllowed(() => room.check(redaction(room, BOB, '$unknown-event')));
  });

  it.each(later)('v%s: events["m.room.redaction"] or events_default limit who sends them, never redact', (v) => {
    const { room, bobMessage } = setup(v);
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50 }, { events: { 'm.room.redaction': 20 }, redact: 0 }));
    expectDenied(() => room.check(redaction(room, BOB, bobMessage.eventId)), /^power level: m\.room\.redaction needs level 20; @bob:b\.test has 0/);
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50 }, { events_default: 20, redact: 100 }));
    expectDenied(() => room.check(redaction(room, BOB, bobMessage.eventId)), /needs level 20/);
    expectAllowed(() => room.check(redaction(room, CAROL, bobMessage.eventId)));
  });

  it.each(later)('v%s: non-members cannot send them', (v) => {
    const { room, bobMessage } = setup(v);
    expectDenied(() => room.check(redaction(room, '@dave:d.test', bobMessage.eventId)), /^sender:/);
  });

  it('v11 moved redacts into content; the rules did not change', () => {
    const { room, aliceMessage } = setup('11');
    const r = redaction(room, BOB, aliceMessage.eventId);
    expect(r.content['redacts']).toBe(aliceMessage.eventId);
    expectAllowed(() => room.check(r));
  });
});

describe('redactionTakesEffect ("Handling redactions")', () => {
  it.each(later)('v%s: the redact level, or the same server as the original sender', (v) => {
    const { room, bobMessage, aliceMessage } = setup(v);
    const state = room.provider;
    expect(redactionTakesEffect(redaction(room, BOB, bobMessage.eventId), bobMessage, state)).toBe(true);
    expect(redactionTakesEffect(redaction(room, BOB, aliceMessage.eventId), aliceMessage, state)).toBe(false);
    expect(redactionTakesEffect(redaction(room, CAROL, aliceMessage.eventId), aliceMessage, state)).toBe(true);
    // Another user of Bob's server.
    expect(redactionTakesEffect(redaction(room, '@bob2:b.test', bobMessage.eventId), bobMessage, state)).toBe(true);
  });

  it.each(later)('v%s: a raised redact level stops moderators', (v) => {
    const { room, aliceMessage } = setup(v);
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50 }, { redact: 60 }));
    expect(redactionTakesEffect(redaction(room, CAROL, aliceMessage.eventId), aliceMessage, room.provider)).toBe(false);
  });

  it('v12: creators redact anything', () => {
    const { room, bobMessage } = setup('12');
    room.send('m.room.power_levels', '', room.creator, room.powerLevels({ [CAROL]: 50 }, { redact: 2 ** 53 - 1 }));
    expect(redactionTakesEffect(redaction(room, room.creator, bobMessage.eventId), bobMessage, room.provider)).toBe(true);
    expect(redactionTakesEffect(redaction(room, CAROL, bobMessage.eventId), bobMessage, room.provider)).toBe(false);
  });

  it.each(ALL_VERSIONS)('v%s: never across rooms or for another event', (v) => {
    const { room, bobMessage, aliceMessage } = setup(v);
    const other = TestRoom.genesis(v);
    const foreign = other.send('m.room.message', undefined, other.creator, { body: 'x' });
    expect(redactionTakesEffect(redaction(room, CAROL, foreign.eventId), foreign, room.provider)).toBe(false);
    expect(redactionTakesEffect(redaction(room, CAROL, bobMessage.eventId), aliceMessage, room.provider)).toBe(false);
  });

  it.each(v1v2)('v%s: the auth rule already decided; an accepted redaction of the same room takes effect', (v) => {
    const { room, aliceMessage } = setup(v);
    const r = redaction(room, BOB, aliceMessage.eventId, '$minted:a.test');
    expectAllowed(() => room.check(r));
    expect(redactionTakesEffect(r, aliceMessage, room.provider)).toBe(true);
    expect(mustVersion(v).eventFormat).toBe('v1');
  });
});
