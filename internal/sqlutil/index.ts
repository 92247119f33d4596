// The storage foundation every component uses. testing.ts is imported directly by tests only.
export * from './connection.js';
export * from './connection-string.js';
export * from './dialect.js';
export * from './errors.js';
export * from './handles.js';
export * from './migrations.js';
export type { QueryLogger } from './query-log.js';
