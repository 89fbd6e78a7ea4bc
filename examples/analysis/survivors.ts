/**
 * Which poisons a filtered run kept, by the class of their source image —
 * the evidence behind the README's "what survives is footwear" — and what
 * share of each class's clean samples it dropped.
 *
 *   npm run build && node dist/examples/analysis/survivors.js runs/<filtered run>
 *
 * Reads the run's config.json, poison.json (absent for a run without
 * poison) and its last scores-epoch<N>.csv (weight > 0 = kept after the
 * rounds), and, when the run re-admitted samples, the final sample weights
 * of checkpoints/last (what it ended training on); the dataset is loaded
 * again from the config to look up each sample's true label.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { readCsvTable } from '../../src/util/csv.js';
import { loadSplits } from '../../src/data/index.js';

const run = process.argv[2];
if (!run) {
  process.stderr.write('usage: node dist/examples/analysis/survivors.js <run directory>\n');
  process.exit(2);
}
const rounds = readdirSync(run)
  .map((f) => /^scores-epoch(\d+)\.csv$/.exec(f))
  .filter((m): m is RegExpExecArray => m !== null)
  .sort((a, b) => Number(a[1]) - Number(b[1]));
if (!rounds.length) {
  process.stderr.write(`${run} has no scores-epoch<N>.csv: was it trained with --backdoor-filter?\n`);
  process.exit(1);
}
const last = rounds[rounds.length - 1][0];
const table = readCsvTable(join(run, last), ',');
const [indexCol, weightCol] = [table.header.indexOf('index'), table.header.indexOf('weight')];
const kept = new Set(table.rows.filter((r) => Number(r.fields[weightCol]) > 0).map((r) => Number(r.fields[indexCol])));
const weightsFile = join(run, 'checkpoints', 'last', 'sample-weights.f32');
const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { filter?: { readmission?: unknown } | null };
const finalWeights = summary.filter?.readmission && existsSync(weightsFile) ? new Float32Array(new Uint8Array(readFileSync(weightsFile)).buffer) : null;
const poisonFile = join(run, 'poison.json');
const poison = existsSync(poisonFile) ? (JSON.parse(readFileSync(poisonFile, 'utf8')) as { indices: number[] }) : { indices: [] };
const { train } = await loadSplits(loadConfig({ file: join(run, 'config.json') }));
const names = train.classNames ?? [];
const all = new Map<string, number>();
const survivors = new Map<string, number>();
for (const i of poison.indices) {
  const name = names[train.label(i)] ?? String(train.label(i));
  all.set(name, (all.get(name) ?? 0) + 1);
  if (kept.has(i)) survivors.set(name, (survivors.get(name) ?? 0) + 1);
}
const total = [...survivors.values()].reduce((a, b) => a + b, 0);
console.log(`${run}: ${total} of ${poison.indices.length} poisons kept after ${last}`);
for (const [name, count] of [...all].sort((a, b) => b[1] - a[1])) console.log(`  ${name.padEnd(12)} kept ${String(survivors.get(name) ?? 0).padStart(4)} of ${count}`);
const poisoned = new Set(poison.indices);
const cleanAll = new Map<string, number>();
const cleanDropped = new Map<string, number>();
const cleanDroppedAtEnd = new Map<string, number>();
const add = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);
for (let i = 0; i < train.size; i++) {
  if (poisoned.has(i)) continue;
  const name = names[train.label(i)] ?? String(train.label(i));
  add(cleanAll, name);
  if (!kept.has(i)) add(cleanDropped, name);
  if (finalWeights && finalWeights[i] === 0) add(cleanDroppedAtEnd, name);
}
console.log(`clean samples dropped, by class${finalWeights ? ' (after the rounds; at the end, after the re-admission)' : ''}:`);
const share = (n: number, of: number) => `${String(n).padStart(6)} of ${of} (${((100 * n) / of).toFixed(1)}%)`;
for (const [name, count] of [...cleanAll].sort((a, b) => (cleanDropped.get(b[0]) ?? 0) / b[1] - (cleanDropped.get(a[0]) ?? 0) / a[1])) {
  const atEnd = finalWeights ? `;  ${share(cleanDroppedAtEnd.get(name) ?? 0, count)}` : '';
  console.log(`  ${name.padEnd(12)} ${share(cleanDropped.get(name) ?? 0, count)}${atEnd}`);
}
process.exit(0);
