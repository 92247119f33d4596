/**
 * A process the crash tests kill with SIGKILL (run from TypeScript by `child-process.ts`).
 * argv[2] is a ChildJob as JSON. It prints one line per event on stdout:
 * - `publish`: publishes `count` messages from `parallel` loops, printing `acked <n>` once a
 *   publish resolves; the test kills it midway.
 * - `consume`: consumes the durable, printing `ready` and then `got <payload>` for each
 *   message it starts, and never finishes a handler.
 */
import pino from 'pino';
import { createBus } from '../index.js';

export interface ChildBusConfig {
  addresses: string[];
  topicPrefix: string;
  storagePath: string;
}

export type ChildJob =
  | { mode: 'publish'; bus: ChildBusConfig; subject: string; count: number; parallel: number }
  | { mode: 'consume'; bus: ChildBusConfig; stream: string; durable: string; ackWaitMs: number };

const job = JSON.parse(process.argv[2] ?? '{}') as ChildJob;
// Never outlive the test that started us: it holds the other end of stdin.
process.stdin.on('close', () => process.exit(3));
process.stdin.resume();
const bus = await createBus({ ...job.bus, inMemory: false, logger: pino({ level: 'silent' }) });
const say = (line: string): void => void process.stdout.write(`${line}\n`);

if (job.mode === 'publish') {
  let next = 0;
  const loop = async (): Promise<void> => {
    while (next < job.count) {
      const n = next++;
      await bus.publish(job.subject, new TextEncoder().encode(String(n)));
      say(`acked ${n}`);
    }
  };
  await Promise.all(Array.from({ length: job.parallel }, loop));
  say('done');
} else {
  await bus.consume({ stream: job.stream, durable: job.durable, ackWaitMs: job.ackWaitMs }, async (m) => {
    say(`got ${new TextDecoder().decode(m.data)}`);
    await new Promise(() => {});
  });
  say('ready');
}
