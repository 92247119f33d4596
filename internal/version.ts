/** What this server calls itself on /_matrix/federation/v1/version and `dendrite --version`. */
export const serverSoftware = { name: 'dendrite-ts', version: '0.1.0' } as const;
