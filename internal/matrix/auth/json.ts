/** Small readers for event content, which arrives as untyped JSON. */
import type { JsonObject, JsonValue } from '../types.js';

export function isJsonObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `content[key]` when it is a string. */
export function stringField(content: JsonObject, key: string): string | undefined {
  const v = content[key];
  return typeof v === 'string' ? v : undefined;
}
