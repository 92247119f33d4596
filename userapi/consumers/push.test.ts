/**
 * Push across federation: an invite from another server's user into a room this server does
 * not hold is pushed with the room's name, read from the invite's stripped state (Sytest's
 * "Invites over federation are correctly pushed with name").
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFederatingNode, type FederatingNode } from '../../test/federation.js';
import { clientRequester, registerUser } from '../../test/harness.js';

let a: FederatingNode;
let b: FederatingNode;
let gw: http.Server;
let gwUrl: string;
const pushes: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  gw = http.createServer((rq, rs) => {
    let text = '';
    rq.on('data', (chunk: Buffer) => (text += chunk.toString()));
    rq.on('end', () => {
      pushes.push((JSON.parse(text) as { notification: Record<string, unknown> }).notification);
      rs.writeHead(200, { 'Content-Type': 'application/json' });
      rs.end('{}');
    });
  });
  await new Promise<void>((r) => gw.listen(0, '127.0.0.1', r));
  gwUrl = `http://127.0.0.1:${(gw.address() as AddressInfo).port}/_matrix/push/v1/notify`;
  [a, b] = await Promise.all([startFederatingNode(), startFederatingNode()]);
}, 60000);
afterAll(async () => {
  await Promise.all([a?.t.stop(), b?.t.stop()]);
  gw?.close();
});

it('pushes an invite from another server with the room name from its stripped state', async () => {
  const onA = clientRequester(() => a.t);
  const onB = clientRequester(() => b.t);
  const alice = await registerUser(onA, 'alice');
  const bob = await registerUser(onB, 'bob');
  const set = await onB('POST', '/pushers/set', bob, { kind: 'http', app_id: 'app.test', app_display_name: 'Test', device_display_name: 'Phone', pushkey: 'bobkey', lang: 'en', data: { url: gwUrl } });
  expect(set.status).toBe(200);
  const roomId = (await onA('POST', '/createRoom', alice, { preset: 'private_chat', name: 'Garden party' })).body.room_id as string;
  const invited = await onA('POST', `/rooms/${encodeURIComponent(roomId)}/invite`, alice, { user_id: `@bob:${b.name}` });
  expect(invited.status, JSON.stringify(invited.body)).toBe(200);
  const deadline = Date.now() + 10000;
  let push: Record<string, unknown> | undefined;
  while (!(push = pushes.find((p) => p['type'] === 'm.room.member' && p['room_id'] === roomId))) {
    if (Date.now() > deadline) throw new Error('no invite push');
    await new Promise((r) => setTimeout(r, 25));
  }
  expect(push).toMatchObject({ room_id: roomId, sender: `@alice:${a.name}`, room_name: 'Garden party', membership: 'invite', user_is_target: true });
}, 30000);
