/** FIN and the text opcode: a whole text message in one frame. */
const finText = 0x81;

/** The whole WebSocket text frame a server sends for `payload` (RFC 6455 §5.2: unmasked), header and payload in one Buffer. */
export function encodeTextFrame(payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = finText;
  if (header === 2) frame[1] = length;
  else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  payload.copy(frame, header);
  return frame;
}

/** The payload of a frame made by {@link encodeTextFrame}. */
export function textPayload(frame: Buffer): Buffer {
  const marker = frame[1] as number;
  return frame.subarray(marker < 126 ? 2 : marker === 126 ? 4 : 10);
}
