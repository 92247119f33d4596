/**
 * A user's push rules: the predefined rules (which the server owns and may change between
 * versions) merged with the user's own rules and their changes to predefined ones. What is
 * stored is the whole ruleset, as `m.push_rules` account data shows it; reading it takes
 * only the user's part and lays it over today's defaults, so new predefined rules appear
 * without a migration.
 */
import { defaultRuleset } from './defaults.js';
import { RULE_KINDS, type PushAction, type PushCondition, type PushRule, type RuleKind, type Ruleset } from './types.js';

export type RuleError = { errcode: 'M_INVALID_PARAM' | 'M_NOT_FOUND' | 'M_BAD_JSON' | 'M_MISSING_PARAM'; message: string };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The ruleset of `userId` from stored `m.push_rules` content (undefined: never changed). */
export function rulesetFromAccountData(content: unknown, userId: string): Ruleset {
  const defaults = defaultRuleset(userId);
  const global = isObject(content) && isObject(content['global']) ? content['global'] : {};
  const out = {} as Ruleset;
  for (const kind of RULE_KINDS) {
    const stored = Array.isArray(global[kind]) ? (global[kind] as unknown[]).filter(isObject) : [];
    const overrides = new Map<string, Record<string, unknown>>();
    const own: PushRule[] = [];
    for (const r of stored) {
      if (typeof r['rule_id'] !== 'string') continue;
      if (r['default'] === true) overrides.set(r['rule_id'], r);
      else if (!r['rule_id'].startsWith('.')) own.push(userRule(r));
    }
    const base = defaults[kind].map((d) => {
      const o = overrides.get(d.rule_id);
      if (!o) return d;
      return { ...d, enabled: typeof o['enabled'] === 'boolean' ? o['enabled'] : d.enabled, actions: Array.isArray(o['actions']) ? (o['actions'] as PushAction[]) : d.actions };
    });
    // The master rule outranks everything; other predefined rules rank below the user's own.
    out[kind] = kind === 'override' ? [...base.filter((r) => r.rule_id === '.m.rule.master'), ...own, ...base.filter((r) => r.rule_id !== '.m.rule.master')] : [...own, ...base];
  }
  return out;
}

function userRule(r: Record<string, unknown>): PushRule {
  const rule: PushRule = {
    rule_id: r['rule_id'] as string,
    default: false,
    enabled: r['enabled'] !== false,
    actions: Array.isArray(r['actions']) ? (r['actions'] as PushAction[]) : [],
  };
  if (Array.isArray(r['conditions'])) rule.conditions = r['conditions'] as PushCondition[];
  if (typeof r['pattern'] === 'string') rule.pattern = r['pattern'];
  return rule;
}

/** The content to store as `m.push_rules`. */
export function rulesetToAccountData(ruleset: Ruleset): Record<string, unknown> {
  return { global: ruleset };
}

export function findRule(ruleset: Ruleset, kind: RuleKind, ruleId: string): PushRule | undefined {
  return ruleset[kind].find((r) => r.rule_id === ruleId);
}

/** Checks a list of actions; returns it, or an error. */
export function parseActions(v: unknown): PushAction[] | RuleError {
  if (!Array.isArray(v)) return { errcode: 'M_BAD_JSON', message: 'actions must be a list' };
  for (const a of v) {
    if (typeof a === 'string') {
      // dont_notify and coalesce are deprecated no-ops, still accepted.
      if (!['notify', 'dont_notify', 'coalesce'].includes(a)) return { errcode: 'M_INVALID_PARAM', message: `unknown action ${a}` };
    } else if (!isObject(a) || typeof a['set_tweak'] !== 'string') {
      return { errcode: 'M_INVALID_PARAM', message: 'an action is a string or {"set_tweak": ..., "value": ...}' };
    }
  }
  return v as PushAction[];
}

function parseConditions(v: unknown): PushCondition[] | RuleError {
  if (!Array.isArray(v)) return { errcode: 'M_BAD_JSON', message: 'conditions must be a list' };
  for (const c of v) {
    if (!isObject(c) || typeof c['kind'] !== 'string') return { errcode: 'M_INVALID_PARAM', message: 'each condition needs a kind' };
    for (const field of ['key', 'pattern', 'is'] as const) {
      if (c[field] !== undefined && typeof c[field] !== 'string') return { errcode: 'M_INVALID_PARAM', message: `condition ${field} must be a string` };
    }
    if (c['kind'] === 'event_match' && (typeof c['key'] !== 'string' || typeof c['pattern'] !== 'string')) {
      return { errcode: 'M_INVALID_PARAM', message: 'event_match needs key and pattern' };
    }
    if (c['kind'] === 'room_member_count' && (typeof c['is'] !== 'string' || !/^(==|<|>|<=|>=)?\d+$/.test(c['is']))) {
      return { errcode: 'M_INVALID_PARAM', message: 'room_member_count needs is, e.g. "2" or ">=10"' };
    }
  }
  return v as PushCondition[];
}

const isError = (v: unknown): v is RuleError => isObject(v) && typeof v['errcode'] === 'string';

/**
 * Adds or replaces a user rule (PUT /pushrules/global/{kind}/{ruleId}), placed before or
 * after another user rule of the same kind when asked. Returns the new ruleset or an error.
 */
export function putRule(ruleset: Ruleset, kind: RuleKind, ruleId: string, body: Record<string, unknown>, place: { before?: string; after?: string }): Ruleset | RuleError {
  if (ruleId.length === 0 || ruleId.startsWith('.') || ruleId.includes('/') || ruleId.includes('\\')) {
    return { errcode: 'M_INVALID_PARAM', message: 'rule IDs may not be empty, start with "." or contain slashes' };
  }
  // Room and sender rules are named by the room or user they match; any non-empty name is kept
  // (Synapse accepts aliases here too), and it only ever matches what it names.
  if ((kind === 'room' || kind === 'sender') && ruleId.trim() === '') return { errcode: 'M_INVALID_PARAM', message: `a ${kind} rule needs a name` };
  const actions = parseActions(body['actions']);
  if (isError(actions)) return actions;
  const rule: PushRule = { rule_id: ruleId, default: false, enabled: true, actions };
  if (kind === 'content') {
    if (typeof body['pattern'] !== 'string') return { errcode: 'M_MISSING_PARAM', message: 'content rules need a pattern' };
    rule.pattern = body['pattern'];
  } else if (kind === 'override' || kind === 'underride') {
    const conditions = parseConditions(body['conditions'] ?? []);
    if (isError(conditions)) return conditions;
    rule.conditions = conditions;
  }
  const existing = findRule(ruleset, kind, ruleId);
  if (existing) rule.enabled = existing.enabled;

  const rules = ruleset[kind].filter((r) => r.rule_id !== ruleId);
  const own = rules.filter((r) => !r.default);
  let at: number;
  const anchorId = place.before ?? place.after;
  if (anchorId !== undefined) {
    const anchor = own.findIndex((r) => r.rule_id === anchorId);
    if (anchor < 0) return { errcode: 'M_NOT_FOUND', message: `no user rule ${anchorId} of kind ${kind}` };
    at = place.before !== undefined ? anchor : anchor + 1;
  } else if (existing && !existing.default) {
    at = ruleset[kind].filter((r) => !r.default).findIndex((r) => r.rule_id === ruleId);
  } else {
    // A new rule without a place goes first among the user's rules: the most specific wins.
    at = 0;
  }
  own.splice(at, 0, rule);
  return replaceOwn(ruleset, kind, own);
}

function replaceOwn(ruleset: Ruleset, kind: RuleKind, own: PushRule[]): Ruleset {
  const base = ruleset[kind].filter((r) => r.default);
  const list = kind === 'override' ? [...base.filter((r) => r.rule_id === '.m.rule.master'), ...own, ...base.filter((r) => r.rule_id !== '.m.rule.master')] : [...own, ...base];
  return { ...ruleset, [kind]: list };
}

export function deleteRule(ruleset: Ruleset, kind: RuleKind, ruleId: string): Ruleset | RuleError {
  const rule = findRule(ruleset, kind, ruleId);
  if (!rule) return { errcode: 'M_NOT_FOUND', message: `no rule ${ruleId} of kind ${kind}` };
  if (rule.default) return { errcode: 'M_INVALID_PARAM', message: 'predefined rules cannot be deleted; disable them instead' };
  return { ...ruleset, [kind]: ruleset[kind].filter((r) => r.rule_id !== ruleId) };
}

/** Sets `enabled` or `actions` of any rule, predefined or the user's. */
export function updateRule(ruleset: Ruleset, kind: RuleKind, ruleId: string, change: { enabled?: boolean; actions?: PushAction[] }): Ruleset | RuleError {
  if (!findRule(ruleset, kind, ruleId)) return { errcode: 'M_NOT_FOUND', message: `no rule ${ruleId} of kind ${kind}` };
  return { ...ruleset, [kind]: ruleset[kind].map((r) => (r.rule_id === ruleId ? { ...r, ...change } : r)) };
}

export { isError as isRuleError };
