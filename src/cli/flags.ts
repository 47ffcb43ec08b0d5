import { InputError } from "../errors.js";

/** Parses a positive integer flag, with the flag's name in the error. */
export function positiveInt(flag: string, text: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw new InputError(`${flag} ${text} is not a positive integer`, { hint: `e.g. ${flag} 4` });
  return n;
}
