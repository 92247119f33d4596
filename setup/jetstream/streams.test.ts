import { describe, expect, it } from 'vitest';
import { subjectMatches } from './bus.js';
import { streamDefinitions, streamOfSubject, subjectFor, subjectToken } from './streams.js';

describe('streams', () => {
  it("names streams and subjects as Dendrite does, under the topic prefix", () => {
    const defs = streamDefinitions('Dendrite');
    expect(defs.map((d) => d.name)).toContain('DendriteInputRoomEvent');
    expect(defs).toHaveLength(12);
    const typing = defs.find((d) => d.name === 'DendriteOutputTypingEvent')!;
    expect(typing).toEqual({ name: 'DendriteOutputTypingEvent', subjects: ['DendriteOutputTypingEvent', 'DendriteOutputTypingEvent.>'], storage: 'memory', maxAgeMs: 60_000 });
    expect(defs.find((d) => d.name === 'DendriteOutputPresenceEvent')).toMatchObject({ storage: 'memory', maxAgeMs: 300_000 });
    expect(defs.find((d) => d.name === 'DendriteOutputRoomEvent')).toMatchObject({ storage: 'file', maxAgeMs: 0 });
    expect(streamDefinitions('X', { OutputTypingEvent: 5 }).find((d) => d.name === 'XOutputTypingEvent')!.maxAgeMs).toBe(5);
  });

  it('makes room IDs one subject token like Dendrite’s Tokenise', () => {
    expect(subjectFor('Dendrite', 'InputRoomEvent', '!abc:example.org')).toBe('DendriteInputRoomEvent._abc_example_org');
    expect(subjectToken('!a.b*c> d:x.y')).toBe('_a_b_c_d_x_y');
    expect(subjectToken('$dollar')).toBe('$dollar');
    expect(subjectToken('')).toBe('_');
    expect(subjectFor('P', 'OutputRoomEvent')).toBe('POutputRoomEvent');
  });

  it('finds the stream of a subject without confusing prefixes of names', () => {
    const defs = streamDefinitions('D');
    expect(streamOfSubject(defs, 'DInputRoomEvent._r_x')?.name).toBe('DInputRoomEvent');
    expect(streamOfSubject(defs, 'DOutputRoomEvent')?.name).toBe('DOutputRoomEvent');
    expect(streamOfSubject(defs, 'DOutputRoomEventX')).toBeUndefined();
  });

  it('matches NATS wildcards', () => {
    expect(subjectMatches('>', 'a.b')).toBe(true);
    expect(subjectMatches('a.>', 'a')).toBe(false);
    expect(subjectMatches('a.>', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.*', 'a.b')).toBe(true);
    expect(subjectMatches('a.*', 'a.b.c')).toBe(false);
    expect(subjectMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.b', 'a.c')).toBe(false);
  });
});
