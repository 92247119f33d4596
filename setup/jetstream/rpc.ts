/**
 * Internal API calls across processes (polylith): each method of a component's `api/`
 * interface becomes request/reply on `<prefix>.api.<component>.<Method>`, JSON both ways.
 * The convention: a method takes one JSON-serialisable request object and returns a Promise
 * of a JSON-serialisable response. A monolith never comes here: its calls are direct.
 *
 * Errors keep their meaning across the wire: the implementation's error comes back as a
 * RemoteApiError with the same message and `code` (e.g. a Matrix errcode); a call nobody
 * serves or that takes too long fails with a BusError naming the component and method.
 */
import { BusError, errorMessage, type Bus, type Subscription } from './bus.js';

export const DEFAULT_RPC_TIMEOUT_MS = 30_000;

/** An error thrown by the remote implementation, re-thrown on the caller's side. */
export class RemoteApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    /** `<component>.<method>` */
    readonly method: string,
  ) {
    super(message);
    this.name = 'RemoteApiError';
  }
}

/**
 * The method names of T; any string when T's type was erased to `object` (a caller that picks
 * the component at run time), so that such callers still compile.
 */
export type ApiMethodName<T extends object> = [keyof T & string] extends [never] ? string : keyof T & string;

type Reply = { ok: unknown } | { error: { message: string; code?: string } };

export function apiSubject(prefix: string, component: string, method: string): string {
  return `${prefix}.api.${component}.${method}`;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function errorReply(err: unknown): Reply {
  const code = err !== null && typeof err === 'object' && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  return { error: { message: errorMessage(err), ...(code !== undefined ? { code } : {}) } };
}

async function handle(impl: object, component: string, method: string, payload: Uint8Array): Promise<Uint8Array> {
  let reply: Reply;
  try {
    const fn: unknown = Reflect.get(impl, method);
    if (typeof fn !== 'function') throw new Error(`${component} has no method ${method}`);
    const req: unknown = payload.length ? JSON.parse(decoder.decode(payload)) : {};
    reply = { ok: (await (fn as (r: unknown) => Promise<unknown>).call(impl, req)) ?? null };
  } catch (err) {
    reply = errorReply(err);
  }
  try {
    return encoder.encode(JSON.stringify(reply));
  } catch (err) {
    // A response JSON cannot carry (a BigInt, a cycle) is the implementation's bug: say so.
    return encoder.encode(JSON.stringify(errorReply(new Error(`${component}.${method} returned a response that is not JSON: ${errorMessage(err)}`))));
  }
}

/** Serves `methods` of `impl` on the bus until the returned subscription is ended. */
export async function serveApi<T extends object>(
  bus: Bus,
  prefix: string,
  component: string,
  impl: T,
  methods: readonly ApiMethodName<T>[],
): Promise<Subscription> {
  const subs = await Promise.all(
    methods.map((method) => bus.respond(apiSubject(prefix, component, method), (payload) => handle(impl, component, method, payload))),
  );
  return { unsubscribe: async () => void (await Promise.all(subs.map((s) => s.unsubscribe()))) };
}

/** A client whose `methods` call the component's server over the bus. */
export function apiClient<T extends object>(
  bus: Bus,
  prefix: string,
  component: string,
  methods: readonly ApiMethodName<T>[],
  timeoutMs = DEFAULT_RPC_TIMEOUT_MS,
): T {
  const client: Record<string, (req: unknown) => Promise<unknown>> = {};
  for (const method of methods) {
    const name = `${component}.${method}`;
    client[method] = async (req: unknown) => {
      let raw: Uint8Array;
      try {
        raw = await bus.request(apiSubject(prefix, component, method), encoder.encode(JSON.stringify(req ?? {})), timeoutMs);
      } catch (err) {
        if (err instanceof BusError && err.code === 'no_responders') {
          throw new BusError('no_responders', `${name}: no responders (no process serves ${component}; is it running?)`, { cause: err });
        }
        if (err instanceof BusError && err.code === 'timeout') {
          throw new BusError('timeout', `${name}: timed out after ${timeoutMs} ms`, { cause: err });
        }
        if (err instanceof BusError) throw new BusError(err.code, `${name}: ${err.message}`, { cause: err });
        throw err;
      }
      const reply = JSON.parse(decoder.decode(raw)) as Reply;
      if ('error' in reply) throw new RemoteApiError(reply.error.message, reply.error.code, name);
      return reply.ok;
    };
  }
  return client as T;
}
