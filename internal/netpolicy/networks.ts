/**
 * Which IP addresses an outbound request may connect to (`federation_api.deny_networks` and
 * `allow_networks`; `media_api.url_preview` has its own pair), with Dendrite's semantics: when
 * both lists are empty every address is allowed; otherwise an address in a denied network is
 * refused, and any other address must be in an allowed network. The check runs on the resolved
 * address just before connecting, so a host name that resolves to a private address is refused
 * like the address itself.
 *
 * IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) are checked as the IPv4 address they carry,
 * so they cannot slip past an IPv4 deny rule. Networks of one family never contain addresses of
 * the other. CIDR strings that do not parse are a configuration error (thrown at construction):
 * silently ignoring a mistyped deny rule would open what the operator meant to close.
 */
import { isIP, isIPv4 } from 'node:net';

/** Dendrite's defaults: loopback, private, CGNAT, link-local and ULA ranges are denied. */
export const DEFAULT_DENY_NETWORKS: readonly string[] = [
  '127.0.0.1/8', '10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10',
  '169.254.0.0/16', '::1/128', 'fe80::/64', 'fc00::/7',
];
export const DEFAULT_ALLOW_NETWORKS: readonly string[] = ['0.0.0.0/0', '::/0'];

/** The 4 or 16 bytes of an IP address literal (no brackets, no zone); undefined when not one. */
export function ipBytes(address: string): Uint8Array | undefined {
  const zone = address.indexOf('%');
  const addr = zone >= 0 ? address.slice(0, zone) : address;
  const family = isIP(addr);
  if (family === 4) return Uint8Array.from(addr.split('.').map(Number));
  if (family !== 6) return undefined;
  const out = new Uint8Array(16);
  let text = addr;
  // An embedded IPv4 tail (`::ffff:1.2.3.4`) becomes two hextets.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (isIPv4(tail)) {
    const b = tail.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, lastColon + 1)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headParts = head === '' ? [] : head.split(':');
  const restParts = rest === undefined || rest === '' ? [] : rest.split(':');
  const parts = rest === undefined ? headParts : [...headParts, ...new Array<string>(8 - headParts.length - restParts.length).fill('0'), ...restParts];
  if (parts.length !== 8) return undefined;
  parts.forEach((p, i) => {
    const v = parseInt(p, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

/** IPv4-mapped IPv6 addresses as their IPv4 bytes; others unchanged. */
function unmap(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.slice(12);
}

interface Network {
  bytes: Uint8Array;
  prefix: number;
}

/** Parses `addr/prefix` (a bare address is a single-host network). Throws on bad input. */
export function parseCidr(cidr: string): Network {
  const slash = cidr.indexOf('/');
  const addr = slash >= 0 ? cidr.slice(0, slash) : cidr;
  const bytes = ipBytes(addr.trim());
  if (!bytes) throw new Error(`not a network: ${JSON.stringify(cidr)}`);
  const max = bytes.length * 8;
  const prefixText = slash >= 0 ? cidr.slice(slash + 1).trim() : String(max);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) throw new Error(`bad prefix length in ${JSON.stringify(cidr)}`);
  const prefix = Number(prefixText);
  // An IPv4-mapped network (`::ffff:10.0.0.0/104`) matches like the IPv4 network it maps.
  const v4 = unmap(bytes);
  if (v4 !== bytes && prefix >= 96) return { bytes: v4, prefix: prefix - 96 };
  return { bytes, prefix };
}

function contains(net: Network, addr: Uint8Array): boolean {
  if (net.bytes.length !== addr.length) return false;
  let bits = net.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((net.bytes[i] ?? 0) & mask) !== ((addr[i] ?? 0) & mask)) return false;
  }
  return true;
}

export class NetworkPolicy {
  private readonly allow: Network[];
  private readonly deny: Network[];
  private readonly open: boolean;

  constructor(opts: { allowNetworks: readonly string[]; denyNetworks: readonly string[] }) {
    this.allow = opts.allowNetworks.map(parseCidr);
    this.deny = opts.denyNetworks.map(parseCidr);
    this.open = this.allow.length === 0 && this.deny.length === 0;
  }

  /** Whether we may connect to `address` (an IP literal without brackets). */
  isAllowed(address: string): boolean {
    if (this.open) return true;
    const bytes = ipBytes(address);
    if (!bytes) return false;
    const addr = unmap(bytes);
    if (this.deny.some((n) => contains(n, addr))) return false;
    return this.allow.some((n) => contains(n, addr));
  }
}
