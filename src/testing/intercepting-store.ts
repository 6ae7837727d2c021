import type { Message, Session, SessionItem, SessionPatch, SessionSummary } from '../schemas.js';
import type { ListOptions, Page, Store } from '../store.js';
import type { BlockingStore } from './blocking-store.js';
import type { FailingStore, StoreMethod, StoreMethodArgs } from './failing-store.js';

/**
 * A {@link Store} that forwards every call to `inner` through {@link intercept}, where a test
 * wrapper decides what happens first (fail it, pause it, log it). Only the methods of `Store` are
 * forwarded; optional capabilities of the inner store are not exposed. The base of
 * {@link FailingStore} and {@link BlockingStore}.
 */
export abstract class InterceptingStore implements Store {
  /** The wrapped store. */
  readonly inner: Store;

  constructor(inner: Store) {
    this.inner = inner;
  }

  /** The inner store's name. */
  get name(): string {
    return this.inner.name;
  }

  /** Runs before each call reaches the inner store; `forward` makes the call. */
  protected abstract intercept<M extends StoreMethod, R>(
    method: M,
    args: StoreMethodArgs[M],
    forward: () => Promise<R>,
  ): Promise<R>;

  createSession(session: Session): Promise<void> {
    return this.intercept('createSession', [session], () => this.inner.createSession(session));
  }

  getSession(id: string): Promise<Session> {
    return this.intercept('getSession', [id], () => this.inner.getSession(id));
  }

  listSessions(options?: ListOptions): Promise<Page<SessionSummary>> {
    return this.intercept('listSessions', options === undefined ? [] : [options], () =>
      this.inner.listSessions(options),
    );
  }

  updateSession(id: string, patch: SessionPatch): Promise<void> {
    return this.intercept('updateSession', [id, patch], () => this.inner.updateSession(id, patch));
  }

  appendItems(id: string, items: SessionItem[]): Promise<void> {
    return this.intercept('appendItems', [id, items], () => this.inner.appendItems(id, items));
  }

  updateMessage(id: string, messageId: string, message: Message): Promise<void> {
    return this.intercept('updateMessage', [id, messageId, message], () =>
      this.inner.updateMessage(id, messageId, message),
    );
  }

  deleteSession(id: string): Promise<void> {
    return this.intercept('deleteSession', [id], () => this.inner.deleteSession(id));
  }

  /** Closes the inner store (if it can be closed). */
  close(): Promise<void> {
    return this.intercept('close', [], async () => {
      await this.inner.close?.();
    });
  }
}
