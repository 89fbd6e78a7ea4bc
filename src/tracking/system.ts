import { execFileSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { basename } from 'node:path';

/** The login name for `mlflow.user` / `user_id`: the OS user, else $USER, else empty (MLflow allows ''). */
export function currentUser(env: NodeJS.ProcessEnv = process.env): string {
  try {
    const name = userInfo().username;
    if (name) return name;
  } catch {
    // No passwd entry for the uid (common in containers).
  }
  return env.USER ?? env.LOGNAME ?? env.USERNAME ?? '';
}

/** `mlflow.source.name`: the script that runs, else the program's name. */
export function sourceName(argv: readonly string[] = process.argv): string {
  return argv[1] ? basename(argv[1]) : 'clip-backdoor-filter';
}

/**
 * The commit checked out in `cwd`, or null outside a repository, before the
 * first commit, without git, or when git is slow (short timeout: tracking
 * must not hold up the start of a run).
 */
export function gitCommit(cwd: string = process.cwd(), timeoutMs = 2000): string | null {
  try {
    const out = execFileSync('git', ['rev-parse', '--verify', '--quiet', 'HEAD'], {
      cwd,
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
      env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
    }).trim();
    return /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(out) ? out : null;
  } catch {
    return null;
  }
}
