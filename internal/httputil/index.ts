export * from './matrixerror.js';
export * from './json.js';
export * from './routers.js';
export { matrixCors, corsHeaders } from './middleware/cors/index.js';
export { matrixErrorHandler } from './middleware/errors/index.js';
export { requestLog } from './middleware/requestlog/index.js';
export * from './clientip.js';
export * from './auth.js';
export * from './clientroute.js';
