import { expect, it } from 'vitest';
import { serverAllowedByAcl } from './acl.js';

it('applies server ACLs: deny wins, globs, ports ignored, IP literals', () => {
  expect(serverAllowedByAcl(undefined, 'anything.example')).toBe(true);
  const acl = { allow: ['*.good.example', 'exact.example'], deny: ['bad.good.example'], allow_ip_literals: false };
  expect(serverAllowedByAcl(acl, 'a.good.example')).toBe(true);
  expect(serverAllowedByAcl(acl, 'a.good.example:8448')).toBe(true);
  expect(serverAllowedByAcl(acl, 'bad.good.example')).toBe(false);
  expect(serverAllowedByAcl(acl, 'EXACT.example')).toBe(true);
  expect(serverAllowedByAcl(acl, 'other.example')).toBe(false);
  expect(serverAllowedByAcl({ allow: ['*'], allow_ip_literals: false }, '1.2.3.4:8448')).toBe(false);
  expect(serverAllowedByAcl({ allow: ['*'] }, '1.2.3.4')).toBe(true);
  expect(serverAllowedByAcl({ allow: ['*'], deny: ['?.example'] }, 'x.example')).toBe(false);
  expect(serverAllowedByAcl({}, 'x.example')).toBe(false);
});
