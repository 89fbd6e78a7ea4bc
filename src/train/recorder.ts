/**
 * The run's record: metric stream, artifacts and the `summary.json` object.
 * Anything that logs (trainer, evaluation, filter) writes here; sinks such as
 * the MLflow hook subscribe, so hook order does not decide what they see.
 */
export type MetricValue = number | null;

export interface MetricPoint {
  readonly key: string;
  readonly value: number;
  /** Epoch (or global step for batch-level metrics). */
  readonly step: number;
  /** Milliseconds since the epoch. */
  readonly timestamp: number;
}

export type MetricListener = (points: readonly MetricPoint[]) => void;

export interface ArtifactRecord {
  /** Absolute path of the file on disk. */
  readonly path: string;
  /** Path inside the run's artifact store, e.g. `scores/scores-epoch2.csv`. */
  readonly artifactPath: string;
}

export type ArtifactListener = (artifact: ArtifactRecord) => void;

export class RunRecorder {
  private readonly metricListeners: MetricListener[] = [];
  private readonly artifactListeners: ArtifactListener[] = [];
  readonly artifacts: ArtifactRecord[] = [];
  /** Every point logged, in order (small: a few metrics per epoch). */
  readonly history: MetricPoint[] = [];

  onMetrics(listener: MetricListener): void {
    this.metricListeners.push(listener);
  }

  onArtifact(listener: ArtifactListener): void {
    this.artifactListeners.push(listener);
  }

  /** Log several metrics at one step; null values are skipped (not measured). */
  log(metrics: Record<string, MetricValue>, step: number): void {
    const timestamp = Date.now();
    const points: MetricPoint[] = [];
    for (const [key, value] of Object.entries(metrics)) {
      if (value === null || value === undefined) continue;
      points.push({ key, value, step, timestamp });
    }
    if (!points.length) return;
    this.history.push(...points);
    for (const l of this.metricListeners) l(points);
  }

  /** Register a file for the run's artifacts (re-registering the same artifact path replaces it). */
  addArtifact(path: string, artifactPath: string): void {
    const record = { path, artifactPath };
    const existing = this.artifacts.findIndex((a) => a.artifactPath === artifactPath);
    if (existing >= 0) this.artifacts[existing] = record;
    else this.artifacts.push(record);
    for (const l of this.artifactListeners) l(record);
  }

  /** The last value logged for a key, or null. */
  latest(key: string): number | null {
    for (let i = this.history.length - 1; i >= 0; i--) if (this.history[i].key === key) return this.history[i].value;
    return null;
  }
}
