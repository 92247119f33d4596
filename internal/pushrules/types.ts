/** Push rules as the Client-Server spec shapes them ("Push Rules"). */

export const RULE_KINDS = ['override', 'content', 'room', 'sender', 'underride'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

export type PushAction = string | { set_tweak: string; value?: unknown };

export interface PushCondition {
  kind: string;
  key?: string;
  pattern?: string;
  value?: unknown;
  is?: string;
}

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  actions: PushAction[];
  conditions?: PushCondition[];
  /** content rules only */
  pattern?: string;
}

export type Ruleset = Record<RuleKind, PushRule[]>;

export function isRuleKind(k: string): k is RuleKind {
  return (RULE_KINDS as readonly string[]).includes(k);
}
