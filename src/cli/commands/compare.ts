import { basename, dirname } from 'node:path';
import type { Argv } from 'yargs';
import { compareRun, formatClassTable, formatComparisonMarkdown, formatComparisonTable, readSummary } from '../../eval/compare.js';

export const command = 'compare <runs..>';
export const describe = 'compare runs side by side (clean accuracy, attack success rate, detection AUROC, poisons left)';

export function builder(y: Argv) {
  return y
    .positional('runs', { type: 'string', array: true, describe: 'run output directories or summary.json files', demandOption: true })
    .option('format', { choices: ['table', 'markdown', 'json'] as const, default: 'table' })
    .option('by-class', { type: 'boolean', default: false, describe: 'also print the accuracy of every class, and each run\'s difference from the first run in points' })
    .example('$0 compare runs/demo/clean runs/demo/poisoned runs/demo/filtered', 'the demo comparison')
    .example('$0 compare runs/clean runs/filtered --by-class', 'where the filtered run lost accuracy, class by class');
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const dirs = (argv.runs as string[]).map((d) => d.replace(/\/summary\.json$/, '').replace(/\/+$/, ''));
  const names = dirs.map((d) => basename(d));
  // Same-named runs from different folders (runs/a/x, runs/b/x) keep their folder in the name.
  const label = (d: string, i: number) => (names.filter((n) => n === names[i]).length > 1 ? `${basename(dirname(d))}/${names[i]}` : names[i]);
  const rows = dirs.map((dir, i) => compareRun(readSummary(dir), dir, label(dir, i)));
  const format = argv.format as string;
  const text = format === 'json' ? JSON.stringify(rows, null, 2) : format === 'markdown' ? formatComparisonMarkdown(rows) : formatComparisonTable(rows);
  process.stdout.write(text + '\n');
  if (argv.byClass && format !== 'json') process.stdout.write('\n' + formatClassTable(rows, format === 'markdown') + '\n');
}
