// The Node-only entry: stores and resolvers that use the file system.
export { FileStore, type FileStoreOptions } from './stores/file.js';
