/**
 * Push rule evaluation (Client-Server API, "Push Rules": conditions, actions, predefined
 * rules). A user's ruleset is compiled once into matcher closures (globs turned into regular
 * expressions, key paths split) and kept until their `m.push_rules` change; evaluating an
 * event is then a walk over closures with no allocation for the common rules, so that a
 * 1,000-member room costs 1,000 cheap walks per event, not 1,000 parses.
 *
 * Evaluation is pure: what depends on the room (member count, the user's display name in it,
 * the sender's power to notify) comes in an `EvaluationContext`, computed lazily by the caller.
 */
import { notificationLevel, powerLevelsOf, userPowerLevel } from '../matrix/auth/index.js';
import type { EventLike } from '../matrix/index.js';
import type { PushAction, PushCondition, PushRule, RuleKind, Ruleset } from './types.js';
import { RULE_KINDS } from './types.js';

/** The event as its JSON (PDU or client format: the keys rules read are the same). */
export type PushEvent = Record<string, unknown>;

export interface EvaluationContext {
  /** Joined members of the room (room_member_count). */
  memberCount: () => number;
  /** The evaluating user's display name in the room (contains_display_name); null when none. */
  displayName: () => string | null;
  /** Whether the sender's power reaches `notifications[key]` (sender_notification_permission). */
  senderMayNotify: (key: string) => boolean;
}

/** What a matching rule asks for. */
export interface PushOutcome {
  ruleId: string;
  kind: RuleKind;
  /** The rule's actions with the historical no-ops (dont_notify, coalesce) stripped. */
  actions: PushAction[];
  notify: boolean;
  highlight: boolean;
  /** Every set_tweak but highlight, e.g. { sound: 'default' }. */
  tweaks: Record<string, unknown>;
}

type Matcher = (event: PushEvent, ctx: EvaluationContext) => boolean;

interface CompiledRule {
  ruleId: string;
  kind: RuleKind;
  match: Matcher;
  outcome: PushOutcome;
}

/** Splits a dot-separated key path (`content.m\.relates_to.rel_type`): `\.` is a dot, `\\` a backslash. */
export function splitKeyPath(key: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < key.length; i++) {
    const ch = key[i]!;
    if (ch === '\\' && (key[i + 1] === '.' || key[i + 1] === '\\')) {
      cur += key[i + 1];
      i++;
    } else if (ch === '.') {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts;
}

function lookup(event: PushEvent, path: readonly string[]): unknown {
  let v: unknown = event;
  for (const p of path) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.prototype.hasOwnProperty.call(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

const WORD = 'A-Za-z0-9_';

/** A glob (`*` any run, `?` one character, `[abc]`/`[!a-z]` classes) as regular expression source. */
export function globToRegexSource(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i]!;
    if (ch === '*') out += '.*?';
    else if (ch === '?') out += '.';
    else if (ch === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      out += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, (c) => `\\${c}`)}]`;
      i = end;
    } else out += ch.replace(/[.*+?^${}()|[\]\\/]/g, (c) => `\\${c}`);
  }
  return out;
}

/** event_match's regular expression: the whole value, or (content.body) a run between word boundaries. */
export function globRegExp(glob: string, wordBoundaries: boolean): RegExp {
  const src = globToRegexSource(glob);
  return wordBoundaries ? new RegExp(`(?<![${WORD}])(?:${src})(?![${WORD}])`, 'is') : new RegExp(`^(?:${src})$`, 'is');
}

const isScalar = (v: unknown): boolean => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isSafeInteger(v));

/** room_member_count's `is`: "2", "==2", "<10", ">=3". Undefined when malformed. */
export function parseMemberCount(is: string): ((n: number) => boolean) | undefined {
  const m = /^(==|<=|>=|<|>)?([0-9]+)$/.exec(is);
  if (!m) return undefined;
  const want = Number(m[2]);
  switch (m[1] ?? '==') {
    case '<':
      return (n) => n < want;
    case '>':
      return (n) => n > want;
    case '<=':
      return (n) => n <= want;
    case '>=':
      return (n) => n >= want;
    default:
      return (n) => n === want;
  }
}

const never: Matcher = () => false;

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, (c) => `\\${c}`);
}

/** contains_display_name: the name in content.body, between word boundaries, ignoring case. */
const displayNameRegExps = new Map<string, RegExp>();
function displayNameRegExp(name: string): RegExp {
  let re = displayNameRegExps.get(name);
  if (!re) {
    re = new RegExp(`(?<![${WORD}])${escapeRegExp(name)}(?![${WORD}])`, 'i');
    if (displayNameRegExps.size > 10_000) displayNameRegExps.clear();
    displayNameRegExps.set(name, re);
  }
  return re;
}

export function compileCondition(c: PushCondition): Matcher {
  switch (c.kind) {
    case 'event_match': {
      if (typeof c.key !== 'string' || typeof c.pattern !== 'string') return never;
      const path = splitKeyPath(c.key);
      const re = globRegExp(c.pattern, c.key === 'content.body');
      return (e) => {
        const v = lookup(e, path);
        return typeof v === 'string' && re.test(v);
      };
    }
    case 'event_property_is': {
      if (typeof c.key !== 'string' || !isScalar(c.value)) return never;
      const path = splitKeyPath(c.key);
      const want = c.value;
      return (e) => {
        const v = lookup(e, path);
        return v !== undefined && isScalar(v) && v === want;
      };
    }
    case 'event_property_contains': {
      if (typeof c.key !== 'string' || !isScalar(c.value)) return never;
      const path = splitKeyPath(c.key);
      const want = c.value;
      return (e) => {
        const v = lookup(e, path);
        return Array.isArray(v) && v.some((x) => isScalar(x) && x === want);
      };
    }
    case 'contains_display_name':
      return (e, ctx) => {
        const body = lookup(e, ['content', 'body']);
        if (typeof body !== 'string') return false;
        const name = ctx.displayName();
        return typeof name === 'string' && name.trim() !== '' && displayNameRegExp(name).test(body);
      };
    case 'room_member_count': {
      const test = typeof c.is === 'string' ? parseMemberCount(c.is) : undefined;
      if (!test) return never;
      return (_e, ctx) => test(ctx.memberCount());
    }
    case 'sender_notification_permission': {
      if (typeof c.key !== 'string') return never;
      const key = c.key;
      return (_e, ctx) => ctx.senderMayNotify(key);
    }
    default:
      // Unrecognised conditions never match (spec), which disables their rule.
      return never;
  }
}

/** The outcome of a list of actions. */
export function outcomeOf(actions: readonly PushAction[], ruleId = '', kind: RuleKind = 'override'): PushOutcome {
  const kept: PushAction[] = [];
  let notify = false;
  let highlight = false;
  const tweaks: Record<string, unknown> = {};
  for (const a of actions) {
    if (a === 'dont_notify' || a === 'coalesce') continue;
    kept.push(a);
    if (a === 'notify') notify = true;
    else if (typeof a === 'object' && a !== null && typeof a.set_tweak === 'string') {
      if (a.set_tweak === 'highlight') highlight = a.value === undefined || a.value === true;
      else tweaks[a.set_tweak] = a.value;
    }
  }
  return { ruleId, kind, actions: kept, notify, highlight, tweaks };
}

function compileRule(rule: PushRule, kind: RuleKind): CompiledRule | undefined {
  if (!rule.enabled) return undefined;
  let match: Matcher;
  if (kind === 'override' || kind === 'underride') {
    const conds = (rule.conditions ?? []).map(compileCondition);
    match = conds.length === 0 ? () => true : conds.length === 1 ? conds[0]! : (e, ctx) => conds.every((m) => m(e, ctx));
  } else if (kind === 'content') {
    if (typeof rule.pattern !== 'string') return undefined;
    match = compileCondition({ kind: 'event_match', key: 'content.body', pattern: rule.pattern });
  } else if (kind === 'room') {
    const roomId = rule.rule_id;
    match = (e) => e['room_id'] === roomId;
  } else {
    const sender = rule.rule_id;
    match = (e) => e['sender'] === sender;
  }
  return { ruleId: rule.rule_id, kind, match, outcome: outcomeOf(rule.actions, rule.rule_id, kind) };
}

/** A ruleset compiled for evaluation. */
export class CompiledRuleset {
  private readonly rules: CompiledRule[];

  constructor(ruleset: Ruleset) {
    this.rules = [];
    for (const kind of RULE_KINDS) {
      for (const r of ruleset[kind] ?? []) {
        const c = compileRule(r, kind);
        if (c) this.rules.push(c);
      }
    }
  }

  /** The first enabled rule that matches, in priority order; undefined when none does. */
  evaluate(event: PushEvent, ctx: EvaluationContext): PushOutcome | undefined {
    for (const r of this.rules) if (r.match(event, ctx)) return r.outcome;
    return undefined;
  }
}

export function compileRuleset(ruleset: Ruleset): CompiledRuleset {
  return new CompiledRuleset(ruleset);
}

/**
 * Compiled rulesets by user, least recently used dropped first. Callers `invalidate` a user
 * whenever their `m.push_rules` account data changes.
 */
export class RulesetCache {
  private readonly entries = new Map<string, CompiledRuleset>();
  /** Bumped by invalidate: a load that raced with a change is not kept. */
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly load: (userId: string) => Promise<Ruleset>,
    private readonly maxEntries = 10_000,
  ) {}

  async get(userId: string): Promise<CompiledRuleset> {
    const hit = this.entries.get(userId);
    if (hit) {
      this.entries.delete(userId);
      this.entries.set(userId, hit);
      return hit;
    }
    const gen = this.generations.get(userId) ?? 0;
    const compiled = compileRuleset(await this.load(userId));
    if ((this.generations.get(userId) ?? 0) !== gen) return compiled;
    this.entries.set(userId, compiled);
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return compiled;
  }

  invalidate(userId: string): void {
    this.entries.delete(userId);
    this.generations.set(userId, (this.generations.get(userId) ?? 0) + 1);
    if (this.generations.size > this.maxEntries * 2) this.generations.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * sender_notification_permission: whether `sender`'s power level in the room reaches
 * `notifications[key]`, read as the room version reads power levels (string levels before
 * v10, creators above every level in v12, the creator at 100 when there is no power levels
 * event). An unknown key (no level and no default) is never reached.
 */
export function senderMayNotify(sender: string, key: string, powerLevelsEvent: EventLike | undefined, createEvent: EventLike | undefined): boolean {
  const pl = powerLevelsOf(powerLevelsEvent, createEvent);
  const needed = notificationLevel(key, pl);
  if (needed === undefined) return false;
  return userPowerLevel(sender, pl, createEvent) >= needed;
}
