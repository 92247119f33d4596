export { clientRoute } from '../../internal/httputil/index.js';
