/**
 * Publishing what syncapi consumes (and federationapi sends on): typing, receipts, to-device
 * messages and presence, each on its stream with a subject per room or per user. Used by
 * clientapi for local users and by federationapi for what other servers send.
 */
import { subjectFor, type Bus } from '../../setup/jetstream/index.js';
import type { OutputPresenceEvent, OutputReceiptEvent, OutputSendToDeviceEvent, OutputTypingEvent } from './index.js';

export interface EphemeralProducer {
  typing(e: OutputTypingEvent): Promise<void>;
  receipt(e: OutputReceiptEvent): Promise<void>;
  sendToDevice(e: OutputSendToDeviceEvent): Promise<void>;
  presence(e: OutputPresenceEvent): Promise<void>;
}

export function busEphemeralProducer(bus: Bus, prefix: string): EphemeralProducer {
  const encoder = new TextEncoder();
  const send = async (subject: string, payload: unknown): Promise<void> => {
    await bus.publish(subject, encoder.encode(JSON.stringify(payload)));
  };
  return {
    typing: (e) => send(subjectFor(prefix, 'OutputTypingEvent', e.room_id), e),
    receipt: (e) => send(subjectFor(prefix, 'OutputReceiptEvent', e.room_id), e),
    sendToDevice: (e) => send(subjectFor(prefix, 'OutputSendToDeviceEvent', e.user_id), e),
    presence: (e) => send(subjectFor(prefix, 'OutputPresenceEvent', e.user_id), e),
  };
}
