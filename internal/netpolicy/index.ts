/** Which addresses outbound requests may reach, and a DNS lookup that enforces it. */
export * from './networks.js';
export * from './lookup.js';
