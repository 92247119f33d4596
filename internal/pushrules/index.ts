export * from './types.js';
export * from './defaults.js';
export * from './ruleset.js';
export * from './evaluate.js';
