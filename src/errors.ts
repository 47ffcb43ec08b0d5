/** Every error Kappa raises on purpose: a stable `code`, a message that says what happened, and a hint that says what to do next. */
export class KappaError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "KappaError";
    this.code = code;
    this.hint = opts.hint;
  }
}

/** Bad input from the user (a flag, a file, an event): never retried. */
export class InputError extends KappaError {
  constructor(message: string, opts: { hint?: string; cause?: unknown; code?: string } = {}) {
    super(opts.code ?? "BAD_INPUT", message, opts);
    this.name = "InputError";
  }
}

/** Something Kappa depends on (NATS, the disk) is unreachable or refused. */
export class UnavailableError extends KappaError {
  constructor(code: string, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(code, message, opts);
    this.name = "UnavailableError";
  }
}

/** A thing the user named does not exist. */
export class NotFoundError extends KappaError {
  constructor(message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super("NOT_FOUND", message, opts);
    this.name = "NotFoundError";
  }
}

/** The message of any thrown value, for reports. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
