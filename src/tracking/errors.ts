/**
 * How the delivery queue treats a failed request:
 * - `retryable`: outage, timeout, 5xx, 429: keep the record, back off, try again;
 * - `permanent`: MLflow rejected this record (4xx): report once, drop it, go on;
 * - `fatal`: nothing else can succeed either (bad credentials, no run to log
 *   to): stop sending and keep every pending record in the spool.
 */
export type FailureKind = 'retryable' | 'permanent' | 'fatal';

export class TrackingError extends Error {
  override readonly name = 'TrackingError';
  constructor(
    message: string,
    readonly kind: FailureKind,
    readonly details: {
      /** MLflow's `error_code` (e.g. `INVALID_PARAMETER_VALUE`) or a local code such as `NETWORK`. */
      errorCode?: string;
      status?: number;
      /** The request may have been applied although it failed (timeout, reset, 5xx). */
      ambiguous?: boolean;
      /** Seconds from a `Retry-After` header. */
      retryAfterSeconds?: number;
      /** A fix to print after the message. */
      hint?: string;
    } = {},
  ) {
    super(message);
  }

  get errorCode(): string | undefined {
    return this.details.errorCode;
  }
}

export const isTrackingError = (e: unknown): e is TrackingError => e instanceof TrackingError;

/** Any thrown value as a TrackingError (unknown errors from local code are permanent). */
export function asTrackingError(e: unknown): TrackingError {
  if (e instanceof TrackingError) return e;
  const err = e as NodeJS.ErrnoException;
  return new TrackingError(err instanceof Error ? err.message : String(e), 'permanent', { errorCode: err?.code ?? 'INTERNAL_ERROR' });
}
