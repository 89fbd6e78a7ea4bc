/**
 * SIGINT/SIGTERM abort the run's signal: the trainer stops at the next batch,
 * hooks flush (MLflow marks the run KILLED), summary.json is written. A second
 * signal exits at once.
 */
export function abortOnSignals(onFirst?: (signal: NodeJS.Signals) => void): { signal: AbortSignal; dispose(): void; received(): NodeJS.Signals | null } {
  const controller = new AbortController();
  let received: NodeJS.Signals | null = null;
  const handler = (sig: NodeJS.Signals) => {
    if (received) process.exit(sig === 'SIGINT' ? 130 : 143);
    received = sig;
    onFirst?.(sig);
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    received: () => received,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
