/**
 * Server ACLs (m.room.server_acl, Client-Server API "Server Access Control Lists"): whether a
 * server may take part in a room. Deny wins over allow; no ACL event allows everyone; IP
 * literals are refused unless `allow_ip_literals` is true (the default).
 */

function globToRegex(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
}

function isIpLiteral(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith('[');
}

/** Whether `serverName` passes the ACL whose content is `acl` (undefined: no ACL in the room). */
export function serverAllowedByAcl(acl: Record<string, unknown> | undefined, serverName: string): boolean {
  if (acl === undefined) return true;
  // The ACL speaks of hosts: the port is not part of the match.
  const host = serverName.startsWith('[') ? serverName.slice(0, serverName.indexOf(']') + 1) : serverName.replace(/:\d+$/, '');
  if (acl['allow_ip_literals'] === false && isIpLiteral(host)) return false;
  const list = (k: string): string[] => (Array.isArray(acl[k]) ? (acl[k] as unknown[]).filter((x): x is string => typeof x === 'string') : []);
  if (list('deny').some((g) => globToRegex(g).test(host))) return false;
  return list('allow').some((g) => globToRegex(g).test(host));
}
