import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { ExternalKind } from '../../data/external/open.js';
import { defaultGridPath, formatInspectReport, inspectData, writeSampleGrid } from '../../data/external/inspect.js';
import { UserError } from '../../util/errors.js';

export const command = 'data <action> <spec>';
export const describe = 'look at external data: `data inspect <spec>` prints counts, skipped samples, image sizes and writes a sample grid';

export function builder(y: Argv) {
  return y
    .positional('action', { choices: ['inspect'] as const, describe: 'what to do' })
    .positional('spec', {
      type: 'string',
      describe: 'tar shards (brace ranges and :: lists, quote them: "shards/{00000..00009}.tar"), a .csv/.tsv file or an image folder',
    })
    .option('kind', { choices: ['webdataset', 'csv', 'folder'] as const, describe: 'kind of data (default: from the spec)' })
    .option('labelled', { type: 'boolean', default: false, describe: 'read as a labelled test split (class subdirectories, label column, JSON label)' })
    .option('class-names', { type: 'array', string: true, describe: 'class names in label order (labelled data; default: sorted labels)' })
    .option('grid', { type: 'string', describe: 'sample grid PNG to write (default: <spec-basename>-grid.png in the current directory)' })
    .option('count', { type: 'number', default: 64, describe: 'images in the grid (spread evenly over the dataset)' })
    .option('size', { type: 'number', default: 64, describe: 'grid cell side in pixels' })
    .option('fit', { choices: ['crop', 'pad'] as const, default: 'crop' as const, describe: 'fit images into cells by centre crop or black padding' })
    .option('channels', { choices: [1, 3] as const, default: 3 as const, describe: '1 = greyscale, 3 = RGB' })
    .option('csv-image-key', { type: 'string', default: 'filepath', describe: 'CSV column with the image path' })
    .option('csv-caption-key', { type: 'string', default: 'title', describe: 'CSV column with the caption' })
    .option('csv-label-key', { type: 'string', default: 'label', describe: 'CSV column with the label (--labelled)' })
    .option('csv-separator', { type: 'string', describe: 'CSV separator: "," or "tab" (default: tab for .tsv, else comma)' })
    .option('strict', { type: 'boolean', default: false, describe: 'stop at the first bad sample' })
    .option('reasons', { type: 'number', default: 20, describe: 'skip reasons listed in full' })
    .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
    .example('$0 data inspect "shards/{00000..00019}.tar"', 'counts, bad samples, image sizes; writes 00000..00019-grid.png')
    .example('$0 data inspect train.csv --csv-image-key filepath --csv-caption-key title', 'a CSV of image paths and captions')
    .example('$0 data inspect test/ --labelled --grid test-grid.png', 'a labelled test folder (one subdirectory per class)');
}

function separator(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const v = String(value);
  if (v === ',' || v === 'comma') return ',';
  if (v === '\t' || v === '\\t' || v === 'tab') return '\t';
  throw new UserError(`--csv-separator "${v}" is not supported`, 'CLI_INVALID', 'use "," (comma) or "tab"');
}

export async function handler(argv: Record<string, unknown>): Promise<void> {
  const spec = String(argv.spec);
  const count = Number(argv.count);
  const size = Number(argv.size);
  if (!Number.isInteger(count) || count < 1) throw new UserError(`--count ${argv.count} must be a positive integer`, 'CLI_INVALID');
  if (!Number.isInteger(size) || size < 8 || size > 512) throw new UserError(`--size ${argv.size} must be an integer in 8..512`, 'CLI_INVALID');
  const interactive = process.stderr.isTTY === true && !argv.json;
  let lastStage = '';
  const { report, dataset } = await inspectData(spec, {
    kind: argv.kind as ExternalKind | undefined,
    labelled: Boolean(argv.labelled),
    classNames: (argv.classNames as string[] | undefined)?.map(String),
    csvImageKey: argv.csvImageKey as string,
    csvCaptionKey: argv.csvCaptionKey as string,
    csvLabelKey: argv.csvLabelKey as string,
    csvSeparator: separator(argv.csvSeparator),
    geometry: { size, fit: argv.fit as 'crop' | 'pad', channels: Number(argv.channels) as 1 | 3 },
    strict: Boolean(argv.strict),
    keepReasons: Number(argv.reasons),
    onProgress: (stage, done, total) => {
      if (!interactive) return;
      if (stage !== lastStage && lastStage) process.stderr.write('\n');
      lastStage = stage;
      if (done === total || done % 200 === 0) process.stderr.write(`\r${stage === 'scan' ? 'scanning' : 'checking images'} ${done}/${total}`);
    },
  });
  if (interactive && lastStage) process.stderr.write('\n');
  const gridPath = resolve((argv.grid as string | undefined) ?? defaultGridPath(spec));
  const grid = dataset.size > 0 ? await writeSampleGrid(dataset, gridPath, count) : null;
  if (argv.json) {
    process.stdout.write(JSON.stringify({ ...report, grid: grid ? { path: gridPath, ...grid } : null }, null, 2) + '\n');
    return;
  }
  process.stdout.write(formatInspectReport(report) + '\n');
  process.stdout.write(grid ? `sample grid: ${gridPath} (${grid.images} images, ${grid.columns}x${grid.rows})\n` : 'sample grid: not written (no usable samples)\n');
}
