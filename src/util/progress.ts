import cliProgress from 'cli-progress';

/**
 * Console output of a run: status lines on stderr (stdout stays clean for
 * machine-readable output), and a progress bar only on an interactive
 * terminal when not quiet.
 */
export interface Reporter {
  /** A status line (suppressed when quiet). */
  info(message: string): void;
  /** A warning (always shown). */
  warn(message: string): void;
  startProgress(label: string, total: number): void;
  /** Advance the bar by `n` items; `rate` is shown as samples/s. */
  tick(n: number, values?: { loss?: number; rate?: number }): void;
  stopProgress(): void;
}

export function createReporter(opts: { quiet: boolean; stream?: NodeJS.WriteStream }): Reporter {
  const stream = opts.stream ?? process.stderr;
  const interactive = !opts.quiet && stream.isTTY === true;
  let bar: cliProgress.SingleBar | null = null;
  const write = (line: string) => {
    if (bar) bar.stop();
    stream.write(line + '\n');
    bar = null;
  };
  return {
    info(message) {
      if (!opts.quiet) write(message);
    },
    warn(message) {
      write(`warning: ${message}`);
    },
    startProgress(label, total) {
      if (!interactive) return;
      bar = new cliProgress.SingleBar(
        {
          stream,
          format: `${label} [{bar}] {value}/{total} | loss {loss} | {rate} samples/s | eta {eta_formatted}`,
          hideCursor: true,
          clearOnComplete: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0, { loss: '-', rate: '-' });
    },
    tick(n, values) {
      if (!bar) return;
      bar.increment(n, {
        loss: values?.loss !== undefined ? values.loss.toFixed(4) : '-',
        rate: values?.rate !== undefined ? Math.round(values.rate) : '-',
      });
    },
    stopProgress() {
      if (bar) bar.stop();
      bar = null;
    },
  };
}

/** A reporter that prints nothing: library use and tests. */
export const silentReporter: Reporter = {
  info() {},
  warn() {},
  startProgress() {},
  tick() {},
  stopProgress() {},
};
