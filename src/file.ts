// agent-sessions/file: the Node-only entry (stores and resolvers that use the file system).

export type { DirectorySourceOptions, SourceFileInfo } from './sources/directory.js';
export { DirectorySourceResolver } from './sources/directory.js';
export { FileEventLog, type FileEventLogOptions } from './stores/file/event-log.js';
export {
  type DamagedSession,
  FileStore,
  type FileStoreDurability,
  type FileStoreOptions,
  type RepairOptions,
  type RepairReport,
  type VerifyReport,
} from './stores/file/store.js';
