import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError } from '@herald/core';

/** Arrays and objects nested deeper than this are refused: no real document needs more, and deeper ones overflow the stack. */
export const maxJsonDepth = 100;

class JsonTooDeepError extends HeraldError {
  constructor() {
    super('json-too-deep', 400, `The JSON body nests arrays and objects more than ${maxJsonDepth} deep`, 'JSON nested too deep');
  }
}

class UnsupportedCharsetError extends HeraldError {
  constructor() {
    super('unsupported-charset', 415, 'The body must be UTF-8', 'Unsupported charset');
  }
}

const [quote, backslash, openArray, closeArray, openObject, closeObject] = [0x22, 0x5c, 0x5b, 0x5d, 0x7b, 0x7d];

/** Whether UTF-8 JSON text nests arrays and objects deeper than `max`; what is inside strings does not count. */
export function nestsDeeperThan(json: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let at = 0; at < json.length; at++) {
    const byte = json[at];
    if (inString) {
      if (byte === backslash) at++;
      else if (byte === quote) inString = false;
    } else if (byte === quote) inString = true;
    else if (byte === openArray || byte === openObject) {
      if (++depth > max) return true;
    } else if (byte === closeArray || byte === closeObject) depth--;
  }
  return false;
}

/**
 * express.json's `verify`: refuses, before it is parsed, a body nested deeper than {@link maxJsonDepth}
 * (400) or in another charset than UTF-8 (415, as RFC 8259 asks).
 */
export function refuseDeepJson(_req: IncomingMessage, _res: ServerResponse, body: Buffer, encoding: string): void {
  if (encoding !== 'utf-8') throw new UnsupportedCharsetError();
  if (nestsDeeperThan(body, maxJsonDepth)) throw new JsonTooDeepError();
}
