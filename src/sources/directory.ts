import { constants, type Dirent } from 'node:fs';
import { open, readdir, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve as resolvePath, sep } from 'node:path';
import { AgentSessionsError, ErrorCode, InvalidArgumentError } from '../errors.js';
import { abortable } from '../internal/abort.js';
import type { ResolvedSource, ResolveOptions, SourceInfo, SourceResolver } from '../sources.js';
import { matchSourceKey, redactSourceRef, sourceNotFound } from './match.js';

/** What a {@link DirectorySourceOptions.parse} function is told about the file it parses. */
export interface SourceFileInfo {
  /** The file's absolute path. */
  path: string;
  /** The source key: the file name without its extension. */
  key: string;
  /** The extension that matched, as configured (e.g. `.yaml`). */
  extension: string;
}

/** Options of {@link DirectorySourceResolver}. */
export interface DirectorySourceOptions {
  /** The directory holding one agent file per key. Relative paths are resolved against the working directory. */
  directory: string;
  /**
   * The file extensions that hold agents, with or without the leading dot, compared without regard
   * to case. An extension may have several parts (`.agent.yaml`); the longest one that matches a
   * file name is removed to make its key. Other files are ignored.
   * @default ['.json', '.yaml', '.yml', '.md', '.txt']
   */
  extensions?: readonly string[];
  /**
   * Turns a file's text into the agent definition. Its result (or what its promise resolves to) is
   * the definition; an error it throws becomes `SOURCE_UNAVAILABLE` naming the file.
   * @default JSON.parse for `.json` files; the text itself for every other extension
   */
  parse?: (content: string, file: SourceFileInfo) => unknown;
}

const DEFAULT_EXTENSIONS = ['.json', '.yaml', '.yml', '.md', '.txt'] as const;

interface AgentFile {
  key: string;
  name: string;
  extension: string;
  /** The path to read: the entry itself, or for a symbolic link its target inside the directory. */
  path: string;
  /** Regular files are opened without following a link that may have replaced them since listing. */
  noFollow: boolean;
}

/**
 * A resolver over a directory with one agent file per key (the SourceResolver
 * contract in src/sources.ts): `coder.yaml` is the source
 * `coder`. Node-only: it is exported from `agent-sessions/file`.
 *
 * The directory is listed on every call, so files added, changed or removed are seen at once;
 * wrap it in a {@link RefreshingSourceResolver} to cache it.
 *
 * - Resolution follows the contract (src/sources.ts): the exact key, else the single key with the same
 *   {@link stableSourceKey}; none or several is `SOURCE_NOT_FOUND`. Two files with the same key
 *   (`coder.json` and `coder.yaml`) are ambiguous: `SOURCE_NOT_FOUND` naming both.
 * - It never reads outside the directory: a reference holding `/`, `\`, NUL or `..`, or equal to
 *   `.`, is `SOURCE_NOT_FOUND`; only entries of the directory itself are read; a symbolic link is
 *   followed only when its target is a file inside the directory; hidden files (`.name`) are
 *   ignored.
 * - A missing or unreadable directory or file is `SOURCE_UNAVAILABLE` with the file-system error
 *   as `cause`; so is a file that fails to parse, naming the file.
 * - An aborted `signal` rejects with its reason.
 *
 * @example
 * ```ts
 * import { DirectorySourceResolver } from 'agent-sessions/file';
 * import { parse } from 'yaml';
 * const sources = new DirectorySourceResolver({
 *   directory: './agents',
 *   parse: (text, { extension }) => (extension === '.json' ? JSON.parse(text) : parse(text)),
 * });
 * ```
 */
export class DirectorySourceResolver implements SourceResolver {
  readonly #directory: string;
  readonly #extensions: readonly string[];
  readonly #parse: ((content: string, file: SourceFileInfo) => unknown) | undefined;

  /** @throws InvalidArgumentError when `directory` is missing or an extension is empty. */
  constructor(options: DirectorySourceOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new InvalidArgumentError('DirectorySourceResolver needs a directory');
    }
    const extensions = (options.extensions ?? DEFAULT_EXTENSIONS).map((extension) =>
      extension.startsWith('.') ? extension : `.${extension}`,
    );
    if (extensions.some((extension) => extension === '.')) {
      throw new InvalidArgumentError('DirectorySourceResolver extensions must not be empty');
    }
    this.#directory = resolvePath(options.directory);
    // Longest first, so `.agent.yaml` wins over `.yaml`.
    this.#extensions = [...extensions].sort((a, b) => b.length - a.length);
    this.#parse = options.parse;
  }

  /** The directory, as an absolute path. */
  get directory(): string {
    return this.#directory;
  }

  /**
   * Reads and parses the agent file `ref` resolves to.
   *
   * @throws AgentSessionsError `SOURCE_NOT_FOUND` for an unknown, ambiguous or unsafe reference;
   * `SOURCE_UNAVAILABLE` when the directory or the file cannot be read or parsed.
   * @throws the signal's reason when `options.signal` aborts.
   */
  async resolve(ref: string, options: ResolveOptions = {}): Promise<ResolvedSource> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (!isSafeRef(ref)) throw sourceNotFound(ref, 'not a file name in the source directory');
    const files = await abortable(this.#scan(), signal);
    const byKey = groupByKey(files);
    const key = matchSourceKey(ref, byKey.keys());
    const matches = byKey.get(key)!;
    if (matches.length > 1) {
      throw new AgentSessionsError(
        ErrorCode.SOURCE_NOT_FOUND,
        `source ${JSON.stringify(redactSourceRef(ref))} is ambiguous: files ${matches
          .map((file) => JSON.stringify(file.name))
          .join(' and ')} have the same key`,
      );
    }
    const file = matches[0]!;
    const content = await abortable(this.#read(file), signal);
    const definition = await abortable(this.#parseFile(content, file), signal);
    return { key, definition };
  }

  /**
   * Lists one entry per key, sorted by key; `name` is the file name. A key held by several files is
   * listed once (resolving it is `SOURCE_NOT_FOUND`).
   *
   * @throws AgentSessionsError `SOURCE_UNAVAILABLE` when the directory cannot be read.
   */
  async list(): Promise<SourceInfo[]> {
    const byKey = groupByKey(await this.#scan());
    return [...byKey.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, files]) => ({ key, name: files.map((file) => file.name).join(', ') }));
  }

  async #scan(): Promise<AgentFile[]> {
    let entries: Dirent[];
    let root: string;
    try {
      entries = await readdir(this.#directory, { withFileTypes: true });
      root = await realpath(this.#directory);
    } catch (error) {
      throw unavailable(`source directory ${JSON.stringify(this.#directory)} cannot be read`, error);
    }
    const files: AgentFile[] = [];
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      const extension = this.#extensions.find(
        (candidate) =>
          entry.name.length > candidate.length && entry.name.toLowerCase().endsWith(candidate.toLowerCase()),
      );
      if (extension === undefined) continue;
      const key = entry.name.slice(0, entry.name.length - extension.length);
      const path = join(this.#directory, entry.name);
      if (entry.isFile()) {
        files.push({ key, name: entry.name, extension, path, noFollow: true });
        continue;
      }
      const target = await linkTarget(path, root);
      if (target !== undefined)
        files.push({ key, name: entry.name, extension, path: target, noFollow: false });
    }
    return files;
  }

  async #read(file: AgentFile): Promise<string> {
    try {
      // O_NOFOLLOW: an entry listed as a regular file that was since replaced by a link fails here
      // instead of being followed out of the directory.
      const handle = await open(
        file.path,
        constants.O_RDONLY | (file.noFollow ? (constants.O_NOFOLLOW ?? 0) : 0),
      );
      try {
        return await handle.readFile({ encoding: 'utf8' });
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw unavailable(
        `source file ${JSON.stringify(join(this.#directory, file.name))} cannot be read`,
        error,
      );
    }
  }

  async #parseFile(content: string, file: AgentFile): Promise<unknown> {
    const info: SourceFileInfo = {
      path: join(this.#directory, file.name),
      key: file.key,
      extension: file.extension,
    };
    try {
      if (this.#parse) return await this.#parse(content, info);
      return file.extension.toLowerCase() === '.json' ? JSON.parse(content) : content;
    } catch (error) {
      if (AgentSessionsError.isInstance(error)) throw error;
      // No detail from the parser in the message: JSON.parse quotes the file's text, which may hold secrets.
      throw new AgentSessionsError(
        ErrorCode.SOURCE_UNAVAILABLE,
        `source file ${JSON.stringify(info.path)} cannot be parsed`,
        { cause: error },
      );
    }
  }
}

// Keys are file names: anything that could name another place is refused before touching the disk.
function isSafeRef(ref: string): boolean {
  return (
    typeof ref === 'string' &&
    ref !== '' &&
    ref !== '.' &&
    !ref.includes('..') &&
    !ref.includes('/') &&
    !ref.includes('\\') &&
    !ref.includes('\0')
  );
}

function groupByKey(files: readonly AgentFile[]): Map<string, AgentFile[]> {
  const byKey = new Map<string, AgentFile[]>();
  for (const file of files) {
    const group = byKey.get(file.key);
    if (group) group.push(file);
    else byKey.set(file.key, [file]);
  }
  return byKey;
}

// The real path of a link's target when it is a regular file inside `root`; undefined otherwise
// (dangling, a directory, or outside), so such links are simply not sources.
async function linkTarget(path: string, root: string): Promise<string | undefined> {
  try {
    const target = await realpath(path);
    const fromRoot = relative(root, target);
    if (fromRoot === '' || fromRoot.split(sep)[0] === '..' || isAbsolute(fromRoot)) return undefined;
    return (await stat(target)).isFile() ? target : undefined;
  } catch {
    return undefined;
  }
}

function unavailable(message: string, cause: unknown): AgentSessionsError {
  if (AgentSessionsError.isInstance(cause)) return cause;
  const detail = cause instanceof Error ? cause.message : String(cause);
  return new AgentSessionsError(ErrorCode.SOURCE_UNAVAILABLE, `${message}: ${detail}`, { cause });
}
