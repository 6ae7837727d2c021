// Prompt blocks → our message → blocks again, and the entry's isolation from the main one.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ContentBlock } from '@agentclientprotocol/sdk';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { messageToBlocks, promptToMessage } from '../../src/acp/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const block: fc.Arbitrary<ContentBlock> = fc.oneof(
  fc.record({ type: fc.constant('text' as const), text: fc.string() }),
  fc.record(
    {
      type: fc.constant('resource_link' as const),
      uri: fc.webUrl(),
      name: fc.string({ minLength: 1 }),
      mimeType: fc.constantFrom('text/plain', 'application/json'),
    },
    { requiredKeys: ['type', 'uri', 'name'] },
  ),
  fc.record(
    {
      type: fc.constant('image' as const),
      data: fc.base64String(),
      mimeType: fc.constantFrom('image/png', 'image/jpeg'),
      uri: fc.webUrl(),
    },
    { requiredKeys: ['type', 'data', 'mimeType'] },
  ),
);

describe('content blocks', () => {
  test('promptToMessage then messageToBlocks gives back the prompt’s blocks (property)', () => {
    fc.assert(
      fc.property(fc.array(block, { minLength: 1, maxLength: 6 }), (blocks) => {
        const message = promptToMessage(blocks, 'msg_1');
        const back = messageToBlocks(message);
        // A lone empty text block has nothing to show.
        if (blocks.length === 1 && blocks[0]?.type === 'text' && blocks[0].text === '') {
          expect(back).toEqual([]);
        } else {
          expect(back).toEqual(blocks);
        }
      }),
    );
  });

  test.each<[string, ContentBlock[], { content: string; parts?: unknown[] }]>([
    ['one text block', [{ type: 'text', text: 'hi' }], { content: 'hi' }],
    [
      'two text blocks',
      [
        { type: 'text', text: 'a' },
        { type: 'text', text: 'b' },
      ],
      {
        content: 'ab',
        parts: [
          { type: 'text', text: 'a' },
          { type: 'text', text: 'b' },
        ],
      },
    ],
    [
      'a titled resource link',
      [{ type: 'resource_link', uri: 'file:///x.md', name: 'x.md', title: 'The X' }],
      { content: '[The X](file:///x.md)', parts: [{ type: 'file', uri: 'file:///x.md', name: 'x.md' }] },
    ],
  ])('promptToMessage of %s', (_, blocks, expected) => {
    const message = promptToMessage(blocks, 'msg_1');
    expect({ content: message.content, ...(message.parts ? { parts: message.parts } : {}) }).toEqual(
      expected,
    );
  });

  test('an image stored by URL only is shown as a resource link', () => {
    expect(messageToBlocks({ content: '', parts: [{ type: 'image', url: 'https://x.test/a.png' }] })).toEqual(
      [{ type: 'resource_link', uri: 'https://x.test/a.png', name: 'https://x.test/a.png' }],
    );
  });
});

describe('entry isolation', () => {
  test('no module outside src/acp imports the ACP SDK (the main entry never loads it)', () => {
    const offenders: string[] = [];
    const walk = (directory: string) => {
      for (const entry of readdirSync(directory, { withFileTypes: true })) {
        const path = join(directory, entry.name);
        if (entry.isDirectory()) {
          if (path !== join(root, 'src', 'acp')) walk(path);
        } else if (readFileSync(path, 'utf8').includes('@agentclientprotocol/')) offenders.push(path);
      }
    };
    walk(join(root, 'src'));
    expect(offenders).toEqual([]);
  });
});
