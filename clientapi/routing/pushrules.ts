/**
 * The push rules API (GET /pushrules/, and per rule GET/PUT/DELETE, enabled, actions). Rules
 * live in the user's `m.push_rules` account data, so syncapi hands them to clients and every
 * change reaches them through OutputClientData. Evaluation is the push component's (issue #11).
 */
import type { Context, Hono } from 'hono';
import { MatrixError, badJson, invalidParam, jsonResponse, notFound, readJsonObject } from '../../internal/httputil/index.js';
import {
  deleteRule,
  findRule,
  isRuleError,
  isRuleKind,
  parseActions,
  putRule,
  rulesetFromAccountData,
  rulesetToAccountData,
  updateRule,
  type RuleError,
  type RuleKind,
  type Ruleset,
} from '../../internal/pushrules/index.js';
import type { ClientUserAPI } from '../../userapi/api/index.js';
import { requireDevice } from '../auth/device.js';
import { clientRoute } from './paths.js';

const MAX_BODY = 64 * 1024;

function ruleError(e: RuleError): MatrixError {
  return new MatrixError(e.errcode === 'M_NOT_FOUND' ? 404 : 400, e.errcode, e.message);
}

export function addPushRulesRoutes(client: Hono, userAPI: ClientUserAPI): void {
  const load = async (userId: string): Promise<Ruleset> => {
    const { content } = await userAPI.queryAccountData({ userId, type: 'm.push_rules' });
    return rulesetFromAccountData(content, userId);
  };
  // Changes are read-modify-write of one document: one at a time per user in this process.
  const queues = new Map<string, Promise<unknown>>();
  const change = async (userId: string, fn: (r: Ruleset) => Ruleset | RuleError): Promise<void> => {
    const prev = queues.get(userId) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(async () => {
      const updated = fn(await load(userId));
      if (isRuleError(updated)) throw ruleError(updated);
      await userAPI.performAccountDataUpdate({ userId, type: 'm.push_rules', content: rulesetToAccountData(updated) });
    });
    queues.set(userId, next);
    try {
      await next;
    } finally {
      if (queues.get(userId) === next) queues.delete(userId);
    }
  };
  const target = (c: Context): { kind: RuleKind; ruleId: string } => {
    if (c.req.param('scope') !== 'global') throw invalidParam('the only push rule scope is global');
    const kind = c.req.param('kind') ?? '';
    if (!isRuleKind(kind)) throw invalidParam(`unknown rule kind ${kind}`);
    return { kind, ruleId: c.req.param('ruleId') ?? '' };
  };
  const existing = async (c: Context): Promise<{ userId: string; kind: RuleKind; ruleId: string; ruleset: Ruleset }> => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const { kind, ruleId } = target(c);
    const ruleset = await load(me.userId);
    if (!findRule(ruleset, kind, ruleId)) throw notFound(`no rule ${ruleId} of kind ${kind}`);
    return { userId: me.userId, kind, ruleId, ruleset };
  };

  clientRoute(client, 'get', '/pushrules/', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    return jsonResponse({ global: await load(me.userId) });
  });
  clientRoute(client, 'get', '/pushrules/:scope/', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    if (c.req.param('scope') !== 'global') throw invalidParam('the only push rule scope is global');
    return jsonResponse(await load(me.userId));
  });

  // The rules of one kind, as Synapse answers it (clients list a kind this way).
  clientRoute(client, 'get', '/pushrules/:scope/:kind/', async (c: Context) => {
    const me = await requireDevice(c, userAPI, { allowGuests: true });
    const { kind } = target(c);
    return jsonResponse((await load(me.userId))[kind]);
  });

  const rulePath = '/pushrules/:scope/:kind/:ruleId';
  clientRoute(client, 'get', rulePath, async (c: Context) => {
    const { kind, ruleId, ruleset } = await existing(c);
    return jsonResponse(findRule(ruleset, kind, ruleId));
  });
  clientRoute(client, 'put', rulePath, async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const { kind, ruleId } = target(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const before = c.req.query('before');
    const after = c.req.query('after');
    if (before !== undefined && after !== undefined) throw invalidParam('give before or after, not both');
    await change(me.userId, (r) => putRule(r, kind, ruleId, body, { ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) }));
    return jsonResponse({});
  });
  clientRoute(client, 'delete', rulePath, async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const { kind, ruleId } = target(c);
    await change(me.userId, (r) => deleteRule(r, kind, ruleId));
    return jsonResponse({});
  });

  clientRoute(client, 'get', `${rulePath}/enabled`, async (c: Context) => {
    const { kind, ruleId, ruleset } = await existing(c);
    return jsonResponse({ enabled: findRule(ruleset, kind, ruleId)!.enabled });
  });
  clientRoute(client, 'put', `${rulePath}/enabled`, async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const { kind, ruleId } = target(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    if (typeof body['enabled'] !== 'boolean') throw badJson('enabled must be true or false');
    const enabled = body['enabled'];
    await change(me.userId, (r) => updateRule(r, kind, ruleId, { enabled }));
    return jsonResponse({});
  });
  clientRoute(client, 'get', `${rulePath}/actions`, async (c: Context) => {
    const { kind, ruleId, ruleset } = await existing(c);
    return jsonResponse({ actions: findRule(ruleset, kind, ruleId)!.actions });
  });
  clientRoute(client, 'put', `${rulePath}/actions`, async (c: Context) => {
    const me = await requireDevice(c, userAPI);
    const { kind, ruleId } = target(c);
    const body = await readJsonObject(c, { maxBytes: MAX_BODY });
    const actions = parseActions(body['actions']);
    if (isRuleError(actions)) throw ruleError(actions);
    await change(me.userId, (r) => updateRule(r, kind, ruleId, { actions }));
    return jsonResponse({});
  });

  // Paths that stop short of a rule, or name an attribute other than enabled and actions: 400,
  // as Synapse answers (registered last, so that the routes above win).
  const incomplete = async (c: Context): Promise<Response> => {
    await requireDevice(c, userAPI, { allowGuests: true });
    throw invalidParam('a push rule path is /pushrules/global/{kind}/{ruleId}[/enabled|/actions]');
  };
  for (const method of ['get', 'put', 'delete'] as const) {
    for (const path of ['/pushrules/:scope', '/pushrules/:scope/:kind', `${rulePath}/:attr`]) clientRoute(client, method, path, incomplete);
  }
  for (const method of ['put', 'delete'] as const) for (const path of ['/pushrules/', '/pushrules/:scope/', '/pushrules/:scope/:kind/']) clientRoute(client, method, path, incomplete);
}
