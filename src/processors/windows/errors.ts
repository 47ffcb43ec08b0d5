import { InputError, KappaError } from "../../errors.js";

/** A window was defined with options it cannot honour; raised when the processor module loads. */
export class WindowConfigError extends KappaError {
  constructor(window: string, message: string, hint: string) {
    super("WINDOW_CONFIG", `window ${window}: ${message}`, { hint });
    this.name = "WindowConfigError";
  }
}

/** An event has no usable event time for a window (missing field, unparsable date). */
export class EventTimeError extends InputError {
  constructor(window: string, seq: number, detail: string, hint: string) {
    super(`window ${window}: event ${seq} ${detail}`, { code: "BAD_EVENT_TIME", hint });
    this.name = "EventTimeError";
  }
}

/** A window's `value` function returned a number that no aggregate can hold (NaN, ±Infinity). */
export class WindowValueError extends InputError {
  constructor(window: string, seq: number, value: unknown) {
    super(`window ${window}: event ${seq} has value ${String(value)}, which is not a finite number`, {
      code: "BAD_WINDOW_VALUE",
      hint: "return a finite number from `value`, or null/undefined to count the event without it",
    });
    this.name = "WindowValueError";
  }
}
