import { stripUrlCredentials } from '../util/redact.js';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { UserError } from '../util/errors.js';

/** Where runs go: a local MLflow file store or a tracking server. */
export type TrackingTarget =
  | { kind: 'file'; /** Absolute path of the store root (`mlruns`). */ root: string; /** `file:///abs/mlruns` */ uri: string }
  | {
      kind: 'http';
      /** Base URL without credentials, query or trailing slash, e.g. `http://host:5000/prefix`. */
      baseUrl: string;
      /** Same as baseUrl: what logs, `mlflow-run.json` and the spool show. */
      uri: string;
      /** `user:pass@` from the URI, if any (decoded). */
      uriCredentials: { username: string; password: string } | null;
    };

export const DEFAULT_TRACKING_URI = './mlruns';

/** `tracking.uri`, else `$MLFLOW_TRACKING_URI`, else `./mlruns`. */
export function pickTrackingUri(configured: string | undefined, env: NodeJS.ProcessEnv): string {
  if (configured !== undefined && configured.trim() !== '') return configured.trim();
  const fromEnv = env.MLFLOW_TRACKING_URI;
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  return DEFAULT_TRACKING_URI;
}

/** Remove `user:pass@` from any URL in `text` (used before anything is printed or stored). */
export { stripUrlCredentials };

/**
 * Parse a tracking URI. Relative paths are resolved against `cwd`, so the
 * store gets absolute `file://` URIs that MLflow can read from anywhere.
 */
export function resolveTrackingTarget(uri: string, cwd: string = process.cwd()): TrackingTarget {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive letter, not a URI.
  if (!scheme || scheme.length === 1) return fileTarget(isAbsolute(uri) ? uri : resolve(cwd, uri));
  if (scheme === 'file') {
    if (uri.startsWith('file://')) {
      try {
        return fileTarget(fileURLToPath(uri));
      } catch (e) {
        throw new UserError(
          `tracking URI ${stripUrlCredentials(uri)} is not a valid file URI: ${(e as Error).message}`,
          'TRACKING_URI',
          'use an absolute file:///path/to/mlruns URI or a plain path such as ./mlruns',
        );
      }
    }
    return fileTarget(resolve(cwd, uri.slice('file:'.length)));
  }
  if (scheme === 'http' || scheme === 'https') {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new UserError(`tracking URI ${stripUrlCredentials(uri)} is not a valid URL`, 'TRACKING_URI', 'use http(s)://host:port of an MLflow tracking server');
    }
    const uriCredentials = url.username || url.password ? { username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) } : null;
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    const baseUrl = url.href.replace(/\/+$/, '');
    return { kind: 'http', baseUrl, uri: baseUrl, uriCredentials };
  }
  throw new UserError(
    `tracking URI scheme "${scheme}:" is not supported (${stripUrlCredentials(uri)})`,
    'TRACKING_URI',
    'use a local store path (./mlruns, file:///abs/mlruns) or an MLflow tracking server http(s)://host:port ' +
      '(for a database backend run `mlflow server --backend-store-uri <db-uri>` and point tracking.uri at the server)',
  );
}

function fileTarget(root: string): TrackingTarget {
  return { kind: 'file', root, uri: pathToFileURL(root).href };
}

/** The Authorization header value for a server, from the MLflow environment variables or the URI. */
export function authorizationHeader(env: NodeJS.ProcessEnv, uriCredentials: { username: string; password: string } | null): string | null {
  // What MLflow's Python client ends up sending: basic auth from the environment, else the
  // URI's user info (requests turns it into basic auth over a token header), else the token.
  const user = env.MLFLOW_TRACKING_USERNAME;
  const pass = env.MLFLOW_TRACKING_PASSWORD;
  if (user && pass) return `Basic ${Buffer.from(`${user}:${pass}`, 'utf8').toString('base64')}`;
  if (uriCredentials) return `Basic ${Buffer.from(`${uriCredentials.username}:${uriCredentials.password}`, 'utf8').toString('base64')}`;
  if (env.MLFLOW_TRACKING_TOKEN) return `Bearer ${env.MLFLOW_TRACKING_TOKEN}`;
  return null;
}

/** Replaces every known secret (and URL user info) in a text before it is printed, stored or sent as a param. */
export type Redactor = (text: string) => string;

/**
 * A redactor for the credentials in `env` and in `uri`: the raw and the
 * percent-encoded forms of each secret, and the base64 credentials of the
 * Authorization header, become `***`.
 */
export function makeRedactor(env: NodeJS.ProcessEnv, uris: readonly (string | undefined)[] = []): Redactor {
  const secrets = new Set<string>();
  const add = (s: string | undefined): void => {
    if (!s) return;
    secrets.add(s);
    secrets.add(encodeURIComponent(s));
  };
  add(env.MLFLOW_TRACKING_PASSWORD);
  add(env.MLFLOW_TRACKING_TOKEN);
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) {
    add(Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`, 'utf8').toString('base64'));
  }
  for (const uri of [...uris, env.MLFLOW_TRACKING_URI]) {
    if (!uri) continue;
    const m = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/\s@]*)@/.exec(uri);
    if (!m) continue;
    const userinfo = m[1];
    const colon = userinfo.indexOf(':');
    const user = colon >= 0 ? userinfo.slice(0, colon) : userinfo;
    const pass = colon >= 0 ? userinfo.slice(colon + 1) : '';
    add(pass);
    add(safeDecode(pass));
    if (pass) add(Buffer.from(`${safeDecode(user)}:${safeDecode(pass)}`, 'utf8').toString('base64'));
  }
  // Longest first, so a secret that contains another is replaced whole.
  const list = [...secrets].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = stripUrlCredentials(text);
    for (const s of list) out = out.split(s).join('***');
    return out;
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Text files larger than this are uploaded as they are (checkpoints are binary anyway). */
const MAX_FILTERED_BYTES = 64 * 1024 * 1024;

/**
 * An artifact content filter that redacts credentials in UTF-8 text files
 * (e.g. a summary.json holding a tracking URI with user info). Binary
 * content, which would not survive a text round trip, passes unchanged.
 */
export function redactingContentFilter(redact: Redactor): (data: Buffer) => Buffer {
  return (data: Buffer) => {
    if (data.length > MAX_FILTERED_BYTES) return data;
    const text = data.toString('utf8');
    const cleaned = redact(text);
    if (cleaned === text || !Buffer.from(text, 'utf8').equals(data)) return data;
    return Buffer.from(cleaned, 'utf8');
  };
}
