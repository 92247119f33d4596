/**
 * What clientapi publishes for syncapi (and, later, federationapi): typing, receipts and
 * to-device messages, each on its stream with a subject per room or per target user.
 */
import { subjectFor, type Bus } from '../../setup/jetstream/index.js';
import type { OutputReceiptEvent, OutputSendToDeviceEvent, OutputTypingEvent } from '../../syncapi/api/index.js';

export interface EphemeralProducer {
  typing(e: OutputTypingEvent): Promise<void>;
  receipt(e: OutputReceiptEvent): Promise<void>;
  sendToDevice(e: OutputSendToDeviceEvent): Promise<void>;
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
  };
}
