import { expect, it } from 'vitest';
import { Notifier } from './notifier.js';
import { ZERO } from './token.js';

it('does not lose a change that lands between looking for news and waiting', async () => {
  const n = new Notifier({ ...ZERO });
  const seen = n.changeCount('@a:x');
  n.advance('pdu', 1, ['@a:x']); // before the request starts waiting
  const t0 = Date.now();
  await n.wait('@a:x', 5000, undefined, seen);
  expect(Date.now() - t0).toBeLessThan(1000);
  expect(n.waitingCount).toBe(0);
});

it('wakes only the users a change names, and times out otherwise', async () => {
  const n = new Notifier({ ...ZERO });
  let woke = false;
  const waiting = n.wait('@a:x', 5000, undefined, n.changeCount('@a:x')).then(() => (woke = true));
  n.advance('pdu', 1, ['@b:x']);
  await new Promise((r) => setTimeout(r, 20));
  expect(woke).toBe(false);
  n.advance('pdu', 2, ['@a:x']);
  await waiting;
  expect(woke).toBe(true);
  expect(n.current.pdu).toBe(2);
  const t0 = Date.now();
  await n.wait('@c:x', 50);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
});
