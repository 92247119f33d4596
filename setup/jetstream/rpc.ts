/**
 * Internal API calls across processes (polylith): each method of a component's `api/`
 * interface becomes request/reply on `<prefix>.api.<component>.<Method>`, JSON both ways.
 * A monolith never goes through here: its calls are direct.
 */
import { BusError, type Bus, type Subscription } from './bus.js';

export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

/** An error thrown by the remote implementation, re-thrown on the caller's side. */
export class RemoteApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly method: string,
  ) {
    super(message);
    this.name = 'RemoteApiError';
  }
}

type Reply = { ok: unknown } | { error: { message: string; code?: string } };

export function apiSubject(prefix: string, component: string, method: string): string {
  return `${prefix}.api.${component}.${method}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export async function serveApi<T extends object>(
  bus: Bus,
  prefix: string,
  component: string,
  impl: T,
  methods: readonly string[],
): Promise<Subscription> {
  const subs = await Promise.all(
    methods.map((method) =>
      bus.respond(apiSubject(prefix, component, method), async (payload) => {
        let reply: Reply;
        try {
          const fn = (impl as Record<string, unknown>)[method];
          if (typeof fn !== 'function') throw new Error(`${component} has no method ${method}`);
          const req: unknown = payload.length ? JSON.parse(decoder.decode(payload)) : {};
          reply = { ok: (await (fn as (r: unknown) => Promise<unknown>).call(impl, req)) ?? null };
        } catch (err) {
          const e = err as { message?: unknown; code?: unknown };
          reply = { error: { message: String(e?.message ?? err), ...(typeof e?.code === 'string' ? { code: e.code } : {}) } };
        }
        return encoder.encode(JSON.stringify(reply));
      }),
    ),
  );
  return { unsubscribe: async () => void (await Promise.all(subs.map((s) => s.unsubscribe()))) };
}

export function apiClient<T extends object>(
  bus: Bus,
  prefix: string,
  component: string,
  methods: readonly string[],
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
): T {
  const client: Record<string, (req: unknown) => Promise<unknown>> = {};
  for (const method of methods) {
    client[method] = async (req: unknown) => {
      let raw: Uint8Array;
      try {
        raw = await bus.request(apiSubject(prefix, component, method), encoder.encode(JSON.stringify(req ?? {})), timeoutMs);
      } catch (err) {
        if (err instanceof BusError && err.code === 'no_responders') {
          throw new BusError('no_responders', `${component}.${method}: no responders (is a process running ${component}?)`);
        }
        if (err instanceof BusError && err.code === 'timeout') {
          throw new BusError('timeout', `${component}.${method}: timed out after ${timeoutMs} ms`);
        }
        throw err;
      }
      const reply = JSON.parse(decoder.decode(raw)) as Reply;
      if ('error' in reply) throw new RemoteApiError(reply.error.message, reply.error.code, `${component}.${method}`);
      return reply.ok;
    };
  }
  return client as T;
}
