/**
 * pino loggers from the `logging` config: "std" writes to standard output, "file" to
 * `<path>/dendrite.log`. One JSON line per event.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import pino, { type Logger, type StreamEntry } from 'pino';
import type { LoggingHook } from './config/config.js';

export function createLogger(hooks: readonly LoggingHook[], base: Record<string, unknown> = {}): Logger {
  const streams: StreamEntry[] = hooks.map((h) => {
    if (h.type === 'file' && h.path) {
      mkdirSync(h.path, { recursive: true });
      return { level: h.level, stream: pino.destination({ dest: path.join(h.path, 'dendrite.log'), sync: false }) };
    }
    return { level: h.level, stream: pino.destination({ dest: 1, sync: false }) };
  });
  const lowest = hooks.reduce<number>((min, h) => Math.min(min, pino.levels.values[h.level] ?? 30), 60);
  return pino(
    { level: pino.levels.labels[lowest] ?? 'info', base, timestamp: pino.stdTimeFunctions.isoTime },
    pino.multistream(streams),
  );
}

/** For tools whose stdout is data (generate-config): logs go to stderr. */
export function stderrLogger(level: string = 'info'): Logger {
  return pino({ level, base: {} }, pino.destination({ dest: 2, sync: true }));
}
