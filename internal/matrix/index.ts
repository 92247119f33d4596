/**
 * The protocol library's public API: canonical JSON, base64, keys, signing, event formats,
 * hashes, redaction and federation request signing. Auth rules and state resolution have their
 * own folders (auth/, stateres/) and index files.
 */
export * from './types.js';
export * from './roomversion.js';
export * from './base64.js';
export * from './canonicaljson.js';
export * from './keys.js';
export * from './signing.js';
export * from './identifiers.js';
export * from './redaction.js';
export * from './eventhash.js';
export * from './event.js';
export * from './eventsigning.js';
export * from './eventbuilder.js';
export * from './xmatrix.js';
