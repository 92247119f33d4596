import type { LookupAddress } from 'node:dns';
import { describe, expect, it } from 'vitest';
import { checkLiteral, DeniedAddressError, NetworkPolicy, policyLookup } from './index.js';

const policy = new NetworkPolicy({ denyNetworks: ['127.0.0.1/8', '::1/128', '10.0.0.0/8'], allowNetworks: ['0.0.0.0/0', '::/0'] });

const lookupWith = (answers: string[], opts: { all?: boolean; family?: number } = {}) =>
  new Promise<{ err: NodeJS.ErrnoException | null; address: string | LookupAddress[] }>((resolve) => {
    policyLookup(policy, async () => answers)('host.example', { all: opts.all ?? false, ...(opts.family ? { family: opts.family } : {}) }, (err, address) => resolve({ err, address }));
  });

describe('policyLookup', () => {
  it('hands the socket only allowed addresses', async () => {
    expect((await lookupWith(['10.1.2.3', '93.184.216.34', '2001:db8::1'])).address).toBe('93.184.216.34');
    expect((await lookupWith(['10.1.2.3', '93.184.216.34', '2001:db8::1'], { all: true })).address).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2001:db8::1', family: 6 },
    ]);
    expect((await lookupWith(['93.184.216.34', '2001:db8::1'], { family: 6 })).address).toBe('2001:db8::1');
  });

  it('fails with EDENIED when every address is refused (a name pointing at loopback)', async () => {
    const { err } = await lookupWith(['127.0.0.1', '::1', '::ffff:10.0.0.1']);
    expect(err).toBeInstanceOf(DeniedAddressError);
    expect(err?.code).toBe('EDENIED');
    expect((await lookupWith([])).err?.code).toBe('ENOTFOUND');
  });

  it('checks IP literals, bracketed or not', () => {
    expect(() => checkLiteral(policy, '127.0.0.2')).toThrow(DeniedAddressError);
    expect(() => checkLiteral(policy, '[::1]')).toThrow(DeniedAddressError);
    expect(() => checkLiteral(policy, '93.184.216.34')).not.toThrow();
    expect(() => checkLiteral(policy, 'example.org')).not.toThrow();
  });
});
