import { KappaError } from "../../errors.js";

/** A synopsis was configured with options it cannot honour (a precision out of range, a sample of size 0). */
export class SynopsisConfigError extends KappaError {
  constructor(message: string, hint: string) {
    super("SYNOPSIS_CONFIG", message, { hint });
    this.name = "SynopsisConfigError";
  }
}

/** Stored synopsis bytes could not be read back: the view file holds state from other code or is damaged. */
export class SynopsisStateError extends KappaError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super("SYNOPSIS_STATE", message, {
      hint: "the stored state was written by different code; replay the processor into a new view version (`kappa replay <processor> --from start`)",
      ...opts,
    });
    this.name = "SynopsisStateError";
  }
}
