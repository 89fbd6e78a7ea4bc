/**
 * `npm run bench -- <name> [options]`: runs dist/bench/<name>.js with the
 * remaining arguments. Every bench prints one JSON line per configuration
 * and a short table, and measures against a baseline in the same run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.js') && f !== 'main.js')
  .map((f) => f.replace(/\.js$/, ''))
  .sort();
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  process.stderr.write(`${name ? `unknown bench "${name}". ` : ''}usage: npm run bench -- <name> [options]\nbenches: ${available.join(', ')}\n`);
  process.exit(2);
}
const script = join(here, `${name}.js`);
if (!existsSync(script)) process.exit(2);
const r = spawnSync(process.execPath, [script, ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
