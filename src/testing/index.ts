// agent-sessions/testing: tools for testing stores, runtimes and hosts. Never imports vitest.
export {};
