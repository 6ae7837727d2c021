import { AgentSessionsError, ErrorCode } from '../errors.js';

function invalid(workingDir: string, why: string, cause?: unknown): AgentSessionsError {
  return new AgentSessionsError(
    ErrorCode.INVALID_WORKING_DIR,
    `invalid working dir ${JSON.stringify(workingDir)}: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

/**
 * Validates a session's working dir: no `..` segment, absolute, an existing directory, and, when
 * `root` is set, inside it after resolving symlinks on both. Resolves to the path as given.
 *
 * The file system is imported on demand, so the main entry still loads where there is none; there,
 * a session with a working dir is refused.
 */
export async function validateWorkingDir(workingDir: unknown, root: string | undefined): Promise<string> {
  if (typeof workingDir !== 'string' || workingDir.length === 0 || workingDir.includes('\0')) {
    throw invalid(String(workingDir), 'expected a non-empty path');
  }
  if (workingDir.split(/[\\/]/).includes('..')) throw invalid(workingDir, 'must not contain ".."');
  let fs: typeof import('node:fs/promises');
  let path: typeof import('node:path');
  try {
    [fs, path] = await Promise.all([import('node:fs/promises'), import('node:path')]);
  } catch (error) {
    throw invalid(workingDir, 'no file system in this runtime', error);
  }
  if (!path.isAbsolute(workingDir)) throw invalid(workingDir, 'must be absolute');
  let real: string;
  try {
    real = await fs.realpath(workingDir);
    const stat = await fs.stat(real);
    if (!stat.isDirectory()) throw invalid(workingDir, 'not a directory');
  } catch (error) {
    if (AgentSessionsError.isInstance(error)) throw error;
    throw invalid(workingDir, 'does not exist', error);
  }
  if (root !== undefined) {
    let realRoot: string;
    try {
      realRoot = await fs.realpath(root);
    } catch (error) {
      throw invalid(workingDir, 'the working dir root does not exist', error);
    }
    const relative = path.relative(realRoot, real);
    if (relative === '..' || relative.startsWith(`..${path.sep}`) || path.isAbsolute(relative)) {
      throw invalid(workingDir, 'outside the working dir root');
    }
  }
  return workingDir;
}
