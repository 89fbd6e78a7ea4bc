/**
 * Errors a user can fix. The CLI prints their message (and hint) without a
 * stack trace and exits non-zero; anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(
    message: string,
    /** Stable machine-readable code, e.g. `CONFIG_INVALID`, `DATA_MISSING`. */
    readonly code: string,
    /** How to fix it, printed on its own line after the message. */
    readonly hint?: string,
  ) {
    super(message);
  }
}

export const isUserError = (e: unknown): e is UserError => e instanceof UserError;

/** A hook threw: the message names the hook and the method so users know whose code failed. */
export class HookError extends Error {
  override readonly name = 'HookError';
  constructor(
    readonly hookName: string,
    readonly method: string,
    override readonly cause: unknown,
  ) {
    super(`hook "${hookName}" failed in ${method}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

export function formatError(e: unknown): string {
  if (e instanceof UserError) return e.hint ? `${e.message}\n  fix: ${e.hint}` : e.message;
  if (e instanceof HookError && e.cause instanceof UserError) {
    return `hook "${e.hookName}" (${e.method}): ${formatError(e.cause)}`;
  }
  return e instanceof Error ? e.message : String(e);
}
