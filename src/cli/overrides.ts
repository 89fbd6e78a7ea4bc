/**
 * yargs turns `--data.size 2000` into `{data: {size: 2000}}`. These helpers
 * pick the config keys out of parsed argv so the schema (not yargs) decides
 * what is valid, and unknown keys are reported with their full dotted name.
 */
const CONFIG_SECTIONS = ['data', 'model', 'train', 'eval', 'poison', 'filter', 'tracking'] as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Remove yargs's camel-case and kebab duplicates (`--max-tokens` gives both `max-tokens` and `maxTokens`). */
function clean(value: unknown): Json {
  if (Array.isArray(value)) return value.map(clean);
  if (value && typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      if (k.includes('-')) continue;
      out[k] = clean(v);
    }
    return out;
  }
  return value as Json;
}

export function configOverridesFromArgv(argv: Record<string, unknown>): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const section of CONFIG_SECTIONS) {
    if (argv[section] !== undefined) out[section] = clean(argv[section]);
  }
  return out;
}

/** Options that look like config keys but belong to no known section (e.g. `--modle.embedDim`). */
export function unknownDottedOptions(argv: Record<string, unknown>, known: readonly string[]): string[] {
  const allowed = new Set<string>([...known, ...CONFIG_SECTIONS, '_', '$0']);
  return Object.keys(argv).filter((k) => !allowed.has(k) && !k.includes('-') && /^[a-z]/i.test(k));
}
