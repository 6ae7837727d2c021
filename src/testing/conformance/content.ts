// Conformance group: large and unicode content
import { assert, assertEqual, show } from '../assert.js';
import {
  fullSession,
  ids,
  makeMessage,
  makeSession,
  messageItem,
  pristinePrototypes,
  UNICODE_SAMPLES,
  UNICODE_TEXT,
  withoutUpdatedAt,
} from './fixtures.js';
import { type Case, registerCases, type StoreConformanceOptions } from './harness.js';

/**
 * Registers the large and unicode content tests of the Store conformance suite: content: 1 MiB values, every kind of unicode text, and prototype-polluting keys round-trip unchanged.
 * Runnable alone; `describeStoreConformance` runs it with every other group.
 */
export function describeContentConformance(options: StoreConformanceOptions): void {
  registerCases(options, options.name ?? 'Store conformance: large and unicode content', contentCases());
}

/** The cases of this group. */
export function contentCases(): Case[] {
  return [
    {
      name: 'a 1 MiB message and a 1 MiB attribute round-trip unchanged',
      async run({ store }) {
        const big = `${'x'.repeat(1024 * 1024 - 3)}end`;
        const bigUnicode = '😀é'.repeat(256 * 1024);
        await store.createSession(makeSession('large', { attributes: { blob: big } }));
        await store.appendItems('large', [messageItem('big', { content: bigUnicode }), messageItem('small')]);
        await store.updateMessage('large', 'small', makeMessage('small', { content: big }));
        const got = await store.getSession('large');
        assert(got.attributes.blob === big, 'a 1 MiB attribute did not round-trip');
        const [first, second] = got.items;
        assert(
          first?.kind === 'message' && first.message.content === bigUnicode,
          'a 1 MiB unicode message did not round-trip',
        );
        assert(
          second?.kind === 'message' && second.message.content === big,
          'a 1 MiB message written by updateMessage did not round-trip',
        );
      },
    },
    {
      name: 'unicode strings (astral, combining marks, RTL, NUL, controls) round-trip unchanged',
      async run({ store }) {
        const session = fullSession('unicode');
        session.title = UNICODE_TEXT;
        session.workingDir = `/work/${UNICODE_SAMPLES.astral}/${UNICODE_SAMPLES.rtl}`;
        session.attributes = {
          ...UNICODE_SAMPLES,
          [UNICODE_SAMPLES.astral]: UNICODE_SAMPLES.nul,
          [UNICODE_SAMPLES.nul]: 1,
        };
        session.items = [
          messageItem('m1', {
            content: UNICODE_TEXT,
            toolCalls: [{ id: 'c1', name: 'write', arguments: JSON.stringify({ text: UNICODE_TEXT }) }],
          }),
        ];
        await store.createSession(session);
        await store.appendItems('unicode', [messageItem('m2', { content: UNICODE_SAMPLES.nul })]);
        const got = await store.getSession('unicode');
        assertEqual(
          withoutUpdatedAt(got),
          withoutUpdatedAt({
            ...session,
            items: [...session.items, messageItem('m2', { content: UNICODE_SAMPLES.nul })],
          }),
          'a unicode session',
        );
        for (const [what, text] of Object.entries(UNICODE_SAMPLES)) {
          assert(
            got.attributes[what] === text,
            `${what} text did not round-trip: ${show(got.attributes[what])}`,
          );
        }
        const listed = await store.listSessions({ workingDir: session.workingDir });
        assertEqual(ids(listed.sessions), ['unicode'], 'listSessions filtered by a unicode workingDir');
        assertEqual(listed.sessions[0]?.title, UNICODE_TEXT, 'a unicode title in a summary');
      },
    },
    {
      name: '__proto__ and constructor keys in attributes and overrides survive and pollute nothing',
      async run({ store }) {
        const hostile = JSON.parse(
          '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"},"nested":{"__proto__":{"polluted":"yes"}}}',
        );
        const overrides = JSON.parse('{"__proto__":"evil/model","constructor":"x/y"}');
        await store.createSession(
          makeSession('proto', { attributes: hostile, agentModelOverrides: overrides }),
        );
        pristinePrototypes('after createSession');
        const got = await store.getSession('proto');
        pristinePrototypes('after getSession');
        assert(Object.hasOwn(got.attributes, '__proto__'), 'the own "__proto__" key of attributes was lost');
        assert(
          Object.hasOwn(got.attributes.nested as object, '__proto__'),
          'a nested own "__proto__" key was lost',
        );
        assertEqual(got.attributes, hostile, 'attributes with __proto__ and constructor keys');
        assertEqual(
          got.agentModelOverrides,
          overrides,
          'agentModelOverrides with __proto__ and constructor keys',
        );
        assert(
          Object.getPrototypeOf(got.attributes) === Object.prototype ||
            Object.getPrototypeOf(got.attributes) === null,
          'attributes came back with a foreign prototype',
        );
        await store.updateSession('proto', {
          attributes: JSON.parse('{"__proto__":{"again":1},"constructor":2}'),
        });
        await store.appendItems('proto', [
          messageItem('m1', {
            content: '{"__proto__":{"polluted":"yes"}}',
            toolCalls: [{ id: 'c', name: 'constructor', arguments: '{"__proto__":{"polluted":"yes"}}' }],
          }),
        ]);
        const patched = await store.getSession('proto');
        pristinePrototypes('after updateSession and appendItems');
        assertEqual(
          patched.attributes,
          JSON.parse('{"__proto__":{"again":1},"constructor":2}'),
          'patched attributes',
        );
        assert(Object.hasOwn(patched.attributes, '__proto__'), 'the patched own "__proto__" key was lost');
        assertEqual(
          patched.items[0],
          messageItem('m1', {
            content: '{"__proto__":{"polluted":"yes"}}',
            toolCalls: [{ id: 'c', name: 'constructor', arguments: '{"__proto__":{"polluted":"yes"}}' }],
          }),
          'a message with __proto__ text',
        );
      },
    },
  ];
}
