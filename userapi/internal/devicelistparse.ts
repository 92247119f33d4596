/**
 * Checks what other servers say about their users' devices before we keep it: the
 * m.device_list_update and m.signing_key_update EDUs and the answer of GET /user/devices.
 * Another server's word is hostile input: every field is checked for type and size, and keys
 * must name the user (and device) they are said to belong to. Pure functions.
 */
import { MAX_ID_BYTES, canonicalJson, fitsBytes, isValidUserId } from '../../internal/matrix/index.js';
import type { KeyObject } from '../api/keys.js';
import type { RemoteDeviceEntry } from '../storage/devicelists.js';
import { crossSigningPublicKey } from './keys.js';

/** A user with more devices than this is cut short: no client needs more, and rows cost. */
export const MAX_DEVICES_PER_USER = 1000;
const MAX_DISPLAY_NAME = 1000;
/** Clustered servers send several prev_ids; more than this is not an honest update. */
const MAX_PREV_IDS = 100;

export interface DeviceListUpdate {
  userId: string;
  deviceId: string;
  streamId: number;
  prevIds: number[];
  deleted: boolean;
  displayName: string | null;
  /** The device's keys as canonical JSON (without `unsigned`), or null when the update carries none. */
  keyJson: string | null;
}

export interface FetchedDeviceList {
  userId: string;
  streamId: number;
  devices: RemoteDeviceEntry[];
  /** 'master' / 'self_signing' -> key JSON. */
  crossSigning: Map<string, string>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStreamId = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isDeviceId = (v: unknown): v is string => typeof v === 'string' && v !== '' && fitsBytes(v, MAX_ID_BYTES);

/** Canonical JSON text (so that the same key compares equal however it was sent), or undefined when it is not valid JSON for Matrix. */
function textOf(obj: Record<string, unknown>): string | undefined {
  try {
    return canonicalJson(obj);
  } catch {
    return undefined;
  }
}

function displayName(v: unknown): string | null {
  return typeof v === 'string' && v.length <= MAX_DISPLAY_NAME ? v : null;
}

/**
 * Device keys as text when they are an object that names no other user or device, else
 * undefined. Their signatures are the clients' to check (as in Synapse and Dendrite, which keep
 * what the user's server sent): a server may answer for its own users only, and a key object
 * naming someone else is refused outright.
 */
function deviceKeyJson(keys: unknown, userId: string, deviceId: string): string | undefined {
  if (!isObject(keys)) return undefined;
  if ((keys['user_id'] !== undefined && keys['user_id'] !== userId) || (keys['device_id'] !== undefined && keys['device_id'] !== deviceId)) return undefined;
  if (keys['keys'] !== undefined && !isObject(keys['keys'])) return undefined;
  const signed = { ...keys };
  // `unsigned` is what a server adds for its own clients; we add ours when answering.
  delete signed['unsigned'];
  return textOf(signed);
}

/** A cross-signing key of `userId` for `usage` with exactly one ed25519 key, as text; else undefined. */
export function crossSigningKeyJson(key: unknown, userId: string, usage: 'master' | 'self_signing'): string | undefined {
  if (!isObject(key) || key['user_id'] !== userId) return undefined;
  const uses = key['usage'];
  if (!Array.isArray(uses) || !uses.includes(usage) || !uses.every((u) => typeof u === 'string')) return undefined;
  if (key['signatures'] !== undefined && !isObject(key['signatures'])) return undefined;
  return crossSigningPublicKey(key as KeyObject) === undefined ? undefined : textOf(key);
}

/** m.device_list_update content, or why it is unusable. */
export function parseDeviceListUpdate(content: Record<string, unknown>): DeviceListUpdate | { error: string } {
  const userId = content['user_id'];
  const deviceId = content['device_id'];
  const streamId = content['stream_id'];
  if (typeof userId !== 'string' || !isValidUserId(userId)) return { error: 'user_id is not a user ID' };
  if (!isDeviceId(deviceId)) return { error: 'device_id must be a non-empty string' };
  if (!isStreamId(streamId)) return { error: 'stream_id must be a non-negative integer' };
  const prev = content['prev_id'] ?? [];
  if (!Array.isArray(prev) || prev.length > MAX_PREV_IDS || !prev.every(isStreamId)) return { error: 'prev_id must be a list of stream IDs' };
  const deleted = content['deleted'] === true;
  let keyJson: string | null = null;
  if (!deleted && content['keys'] !== undefined) {
    const k = deviceKeyJson(content['keys'], userId, deviceId);
    if (k === undefined) return { error: 'keys are not the device keys of this user and device' };
    keyJson = k;
  }
  return { userId, deviceId, streamId, prevIds: prev, deleted, displayName: displayName(content['device_display_name']), keyJson };
}

/** The answer of GET /user/devices/{userId}, or why it is unusable. */
export function parseUserDevices(userId: string, body: Record<string, unknown>): FetchedDeviceList | { error: string } {
  if (body['user_id'] !== userId) return { error: 'the answer is about another user' };
  const streamId = body['stream_id'] ?? 0;
  if (!isStreamId(streamId)) return { error: 'stream_id must be a non-negative integer' };
  const list = body['devices'];
  if (!Array.isArray(list)) return { error: 'devices must be a list' };
  const devices = new Map<string, RemoteDeviceEntry>();
  for (const d of list) {
    if (devices.size >= MAX_DEVICES_PER_USER) break;
    if (!isObject(d) || !isDeviceId(d['device_id']) || devices.has(d['device_id'])) continue;
    const deviceId = d['device_id'];
    // A device whose keys are missing or not its own is listed without keys.
    devices.set(deviceId, { deviceId, displayName: displayName(d['device_display_name']), keyJson: deviceKeyJson(d['keys'], userId, deviceId) ?? null });
  }
  return { userId, streamId, devices: [...devices.values()], crossSigning: parseCrossSigning(userId, body) };
}

/** The master and self-signing keys of `userId` in an object (a /user/devices answer or m.signing_key_update). */
export function parseCrossSigning(userId: string, obj: Record<string, unknown>): Map<string, string> {
  const out = new Map<string, string>();
  const master = crossSigningKeyJson(obj['master_key'], userId, 'master');
  const self = crossSigningKeyJson(obj['self_signing_key'], userId, 'self_signing');
  if (master !== undefined) out.set('master', master);
  if (self !== undefined) out.set('self_signing', self);
  return out;
}
