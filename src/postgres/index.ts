// agent-sessions/postgres: the PostgreSQL store. `pg` is an optional peer dependency of this entry
// only; the main entry never loads it.

export { PostgresEventLog, type PostgresEventLogOptions, type PostgresReplay } from './event-log.js';
export { MIGRATIONS, type Migration, MigrationError, migrate } from './migrations.js';
export { PostgresStore, type PostgresStoreOptions } from './store.js';
