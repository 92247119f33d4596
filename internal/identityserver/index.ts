/** Identity servers: the HTTP client and the checks made when a third-party invite is redeemed. */
export * from './client.js';
export * from './signed.js';
