/** Client-Server API rate limiting (`client_api.rate_limiting`). */
export { RateLimiter, type RateLimiterOptions, type TakeResult } from './ratelimit.js';
export { limitedRoute, newRateLimitMiddleware, rateLimitMiddleware, type CallerKind, type RateLimitMiddlewareOptions } from './middleware.js';
