/**
 * The network policy (`federation_api.deny_networks` / `allow_networks`) lives in
 * internal/netpolicy: mediaapi's URL previews apply the same rules to their own lists.
 */
export * from '../../internal/netpolicy/networks.js';
