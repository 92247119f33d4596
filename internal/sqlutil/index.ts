export * from './connection.js';
export * from './handles.js';
export * from './migrations.js';
export * from './dialect.js';
