// Finding one header in a raw NATS header block ("NATS/1.0\r\nKey: value\r\n…\r\n\r\n") without decoding
// it to a string: a build checks every handled event's schema version, and decoding each block would cost
// more than the check is worth. Names compare case-insensitively, as headerValue in packed.ts does.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A header name prepared for headerAt: its bytes in lower case. */
export type HeaderName = Uint8Array;

/** Prepares a header name (letters, digits and '-') for headerAt. */
export function headerName(name: string): HeaderName {
  return encoder.encode(name.toLowerCase());
}

/**
 * The value of header `name` in the block `u8[start, end)`, trimmed; undefined when absent. The first line
 * (the status line) is never a header.
 */
export function headerAt(u8: Uint8Array, start: number, end: number, name: HeaderName): string | undefined {
  const n = name.length;
  let p = u8.indexOf(10, start) + 1;
  while (p > 0 && p + n < end) {
    let i = 0;
    for (; i < n; i++) {
      const c = u8[p + i]!;
      if (c !== name[i] && !(c >= 65 && c <= 90 && (c | 0x20) === name[i])) break;
    }
    if (i === n) {
      let q = p + n;
      while (q < end && (u8[q] === 32 || u8[q] === 9)) q++;
      if (u8[q] === 58) {
        let a = q + 1;
        let b = u8.indexOf(10, a);
        if (b < 0 || b > end) b = end;
        while (a < b && (u8[a] === 32 || u8[a] === 9)) a++;
        while (b > a && (u8[b - 1] === 13 || u8[b - 1] === 32 || u8[b - 1] === 9)) b--;
        return decoder.decode(u8.subarray(a, b));
      }
    }
    p = u8.indexOf(10, p) + 1;
    if (p >= end) break;
  }
  return undefined;
}
