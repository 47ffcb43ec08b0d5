/**
 * What every synopsis offers the persistence helper: deterministic bytes, and a revision that
 * changes with every mutation, so unchanged state is not rewritten and cached copies can be checked.
 */
export interface Synopsis {
  /** Increases on every change to the state; equal revisions mean equal bytes. */
  readonly revision: number;
  /** The state as bytes: the same state gives the same bytes on every machine. */
  serialize(): Uint8Array;
}
