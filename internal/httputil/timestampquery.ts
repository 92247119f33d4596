/**
 * The query of GET /timestamp_to_event, the same in the Client-Server and Server-Server APIs:
 * `ts` (milliseconds since the epoch, a non-negative integer) and `dir` (`f` or `b`), both
 * required. Absent: 400 M_MISSING_PARAM; malformed: 400 M_INVALID_PARAM (as Synapse answers).
 */
import { invalidParam, missingParam } from './matrixerror.js';

export interface TimestampQuery {
  ts: number;
  dir: 'f' | 'b';
}

export function parseTimestampQuery(query: (name: string) => string | undefined): TimestampQuery {
  const rawTs = query('ts');
  const rawDir = query('dir');
  if (rawTs === undefined || rawTs === '') throw missingParam('ts is required');
  if (!/^[0-9]{1,16}$/.test(rawTs) || !Number.isSafeInteger(Number(rawTs))) throw invalidParam('ts must be a non-negative integer (milliseconds since the Unix epoch)');
  if (rawDir === undefined || rawDir === '') throw missingParam('dir is required');
  if (rawDir !== 'f' && rawDir !== 'b') throw invalidParam('dir must be "f" or "b"');
  return { ts: Number(rawTs), dir: rawDir };
}
