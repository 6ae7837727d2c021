import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import { AgentSessionsError, type ErrorCode } from '../../src/errors.js';
import { DirectorySourceResolver } from '../../src/sources/directory.js';

// The file system is the OS boundary: a hook runs before the resolver opens a file, to fail the open
// or to change the directory between listing and opening.
const openHook = vi.hoisted(() => ({ before: undefined as (() => Promise<void>) | undefined }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const original = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...original,
    open: async (...args: Parameters<typeof original.open>) => {
      const before = openHook.before;
      openHook.before = undefined;
      await before?.();
      return original.open(...args);
    },
  };
});

let root: string;
let directory: string;

beforeEach(async () => {
  openHook.before = undefined;
  root = await mkdtemp(join(tmpdir(), 'agent-sessions-sources-'));
  directory = join(root, 'agents');
  await mkdir(directory);
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>, code: ErrorCode): Promise<AgentSessionsError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!AgentSessionsError.hasCode(error, code)) throw new Error(`expected ${code}, got ${String(error)}`);
  return error;
}

describe('DirectorySourceResolver', () => {
  test('resolve parses a .json file and keys it by its name without extension', async () => {
    await writeFile(join(directory, 'coder.json'), '{"model":"m"}');
    const sources = new DirectorySourceResolver({ directory });
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: { model: 'm' } });
  });

  test.each(['.yaml', '.yml', '.md', '.txt'])('resolve returns the text of a %s file', async (extension) => {
    await writeFile(join(directory, `coder${extension}`), 'name: coder\n');
    const sources = new DirectorySourceResolver({ directory });
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: 'name: coder\n' });
  });

  test('resolve matches the default extensions regardless of case', async () => {
    await writeFile(join(directory, 'coder.JSON'), '[1]');
    await expect(new DirectorySourceResolver({ directory }).resolve('coder')).resolves.toEqual({
      key: 'coder',
      definition: [1],
    });
  });

  test('resolve uses the parse option with the file path, key and extension', async () => {
    await writeFile(join(directory, 'coder.yaml'), 'text');
    const calls: unknown[] = [];
    const sources = new DirectorySourceResolver({
      directory,
      parse: async (content, file) => {
        calls.push(file);
        return { parsed: content };
      },
    });
    await expect(sources.resolve('coder')).resolves.toEqual({ key: 'coder', definition: { parsed: 'text' } });
    expect(calls).toEqual([{ path: join(directory, 'coder.yaml'), key: 'coder', extension: '.yaml' }]);
  });

  test('resolve strips the longest configured extension', async () => {
    await writeFile(join(directory, 'coder.agent.yaml'), 'x');
    const sources = new DirectorySourceResolver({ directory, extensions: ['yaml', '.agent.yaml'] });
    await expect(sources.resolve('coder')).resolves.toMatchObject({ key: 'coder' });
    await expect(sources.list()).resolves.toEqual([{ key: 'coder', name: 'coder.agent.yaml' }]);
  });

  test('resolve ignores files whose extension is not configured', async () => {
    await writeFile(join(directory, 'coder.toml'), 'x');
    await failure(new DirectorySourceResolver({ directory }).resolve('coder'), 'SOURCE_NOT_FOUND');
  });

  test('resolve rejects with SOURCE_NOT_FOUND naming an unknown reference', async () => {
    await writeFile(join(directory, 'coder.json'), '{}');
    const error = await failure(
      new DirectorySourceResolver({ directory }).resolve('reviewer'),
      'SOURCE_NOT_FOUND',
    );
    expect(error.message).toContain('"reviewer"');
  });

  test('resolve rejects with SOURCE_NOT_FOUND naming both files when two share a key', async () => {
    await writeFile(join(directory, 'coder.json'), '{}');
    await writeFile(join(directory, 'coder.yaml'), 'x');
    const error = await failure(
      new DirectorySourceResolver({ directory }).resolve('coder'),
      'SOURCE_NOT_FOUND',
    );
    expect(error.message).toContain('coder.json');
    expect(error.message).toContain('coder.yaml');
  });

  test.each([
    ['a parent reference', '..'],
    ['a current-directory reference', '.'],
    ['a path with a slash', 'sub/coder'],
    ['a path with a backslash', 'sub\\coder'],
    ['a parent path', '../outside'],
    ['a NUL byte', 'coder\0'],
    ['an empty reference', ''],
  ])('resolve rejects %s with SOURCE_NOT_FOUND', async (_name, ref) => {
    await writeFile(join(directory, 'coder.json'), '{}');
    await writeFile(join(root, 'outside.json'), '{"secret":true}');
    await mkdir(join(directory, 'sub'));
    await writeFile(join(directory, 'sub', 'coder.json'), '{}');
    await failure(new DirectorySourceResolver({ directory }).resolve(ref), 'SOURCE_NOT_FOUND');
  });

  test('resolve does not follow a symbolic link to a file outside the directory', async () => {
    await writeFile(join(root, 'outside.json'), '{"secret":true}');
    await symlink(join(root, 'outside.json'), join(directory, 'escape.json'));
    const sources = new DirectorySourceResolver({ directory });
    await failure(sources.resolve('escape'), 'SOURCE_NOT_FOUND');
    await expect(sources.list()).resolves.toEqual([]);
  });

  test('resolve follows a symbolic link to a file inside the directory', async () => {
    await mkdir(join(directory, 'versions'));
    await writeFile(join(directory, 'versions', 'coder-v2.json'), '{"v":2}');
    await symlink(join(directory, 'versions', 'coder-v2.json'), join(directory, 'coder.json'));
    await expect(new DirectorySourceResolver({ directory }).resolve('coder')).resolves.toEqual({
      key: 'coder',
      definition: { v: 2 },
    });
  });

  test('resolve ignores directories, dangling links and hidden files', async () => {
    await mkdir(join(directory, 'folder.json'));
    await symlink(join(directory, 'missing.json'), join(directory, 'dangling.json'));
    await writeFile(join(directory, '.hidden.json'), '{}');
    const sources = new DirectorySourceResolver({ directory });
    for (const ref of ['folder', 'dangling', '.hidden'])
      await failure(sources.resolve(ref), 'SOURCE_NOT_FOUND');
    await expect(sources.list()).resolves.toEqual([]);
  });

  test('resolve rejects with SOURCE_UNAVAILABLE and the file-system cause when the directory is missing', async () => {
    const sources = new DirectorySourceResolver({ directory: join(root, 'missing') });
    const error = await failure(sources.resolve('coder'), 'SOURCE_UNAVAILABLE');
    expect(error.cause).toMatchObject({ code: 'ENOENT' });
    expect(error.message).toContain(join(root, 'missing'));
  });

  test('list rejects with SOURCE_UNAVAILABLE when the directory is missing', async () => {
    await failure(
      new DirectorySourceResolver({ directory: join(root, 'missing') }).list(),
      'SOURCE_UNAVAILABLE',
    );
  });

  test('resolve rejects with SOURCE_UNAVAILABLE naming a JSON file that fails to parse, without its content', async () => {
    await writeFile(join(directory, 'coder.json'), 'not json: api_key=secret');
    const error = await failure(
      new DirectorySourceResolver({ directory }).resolve('coder'),
      'SOURCE_UNAVAILABLE',
    );
    expect(error.message).toContain('coder.json');
    expect(error.message).not.toContain('secret');
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });

  test('resolve rejects with SOURCE_UNAVAILABLE when the parse option throws', async () => {
    await writeFile(join(directory, 'coder.yaml'), 'x');
    const cause = new Error('bad yaml');
    const sources = new DirectorySourceResolver({
      directory,
      parse: () => {
        throw cause;
      },
    });
    const error = await failure(sources.resolve('coder'), 'SOURCE_UNAVAILABLE');
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('coder.yaml');
  });

  test('resolve rejects with SOURCE_UNAVAILABLE and the cause when the file cannot be opened', async () => {
    await writeFile(join(directory, 'coder.json'), '{}');
    const cause = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
    openHook.before = async () => {
      throw cause;
    };
    const error = await failure(
      new DirectorySourceResolver({ directory }).resolve('coder'),
      'SOURCE_UNAVAILABLE',
    );
    expect(error.cause).toBe(cause);
    expect(error.message).toContain('coder.json');
  });

  test('resolve refuses a listed file replaced by a link to the outside before it is opened', async () => {
    await writeFile(join(root, 'outside.json'), '{"secret":true}');
    await writeFile(join(directory, 'coder.json'), '{}');
    openHook.before = async () => {
      await rm(join(directory, 'coder.json'));
      await symlink(join(root, 'outside.json'), join(directory, 'coder.json'));
    };
    const error = await failure(
      new DirectorySourceResolver({ directory }).resolve('coder'),
      'SOURCE_UNAVAILABLE',
    );
    expect(error.cause).toMatchObject({ code: 'ELOOP' });
  });

  test('resolve finds a file named after an encoded URL by its stable key', async () => {
    const name = encodeURIComponent('https://hub.example/agents/coder?tag=v3');
    await writeFile(join(directory, `${name}.json`), '{"v":3}');
    const sources = new DirectorySourceResolver({ directory });
    await expect(
      sources.resolve(encodeURIComponent('https://hub.example/agents/coder?tag=v2')),
    ).resolves.toEqual({
      key: name,
      definition: { v: 3 },
    });
  });

  test('resolve rejects with the reason of an already aborted signal', async () => {
    await writeFile(join(directory, 'coder.json'), '{}');
    const reason = new Error('stop');
    await expect(
      new DirectorySourceResolver({ directory }).resolve('coder', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });

  test('resolve rejects with the reason of a signal that aborts while it reads', async () => {
    await writeFile(join(directory, 'coder.yaml'), 'x');
    const controller = new AbortController();
    const reason = new Error('stop');
    const sources = new DirectorySourceResolver({
      directory,
      parse: () => {
        controller.abort(reason);
        return new Promise(() => {});
      },
    });
    await expect(sources.resolve('coder', { signal: controller.signal })).rejects.toBe(reason);
  });

  test('resolve sees files added after construction', async () => {
    const sources = new DirectorySourceResolver({ directory });
    await failure(sources.resolve('coder'), 'SOURCE_NOT_FOUND');
    await writeFile(join(directory, 'coder.json'), '{}');
    await expect(sources.resolve('coder')).resolves.toMatchObject({ key: 'coder' });
  });

  test('list returns one entry per key, sorted, naming the files', async () => {
    await writeFile(join(directory, 'reviewer.yaml'), 'x');
    await writeFile(join(directory, 'coder.json'), '{}');
    await writeFile(join(directory, 'coder.md'), 'x');
    await writeFile(join(directory, 'notes.csv'), 'x');
    const listed = await new DirectorySourceResolver({ directory }).list();
    expect(listed.map((info) => info.key)).toEqual(['coder', 'reviewer']);
    expect(listed[0]?.name).toContain('coder.json');
    expect(listed[0]?.name).toContain('coder.md');
  });

  test('the constructor throws INVALID_ARGUMENT without a directory or with an empty extension', () => {
    expect(() => new DirectorySourceResolver({ directory: '' })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => new DirectorySourceResolver({ directory, extensions: [''] })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
