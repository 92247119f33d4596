/** The outbound federation HTTP layer: server discovery and the signing federation client. */
export * from './errors.js';
export * from './networks.js';
export * from './resolve.js';
export { type Endpoint } from './transport.js';
export * from './client.js';
