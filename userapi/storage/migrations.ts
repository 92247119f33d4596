/**
 * The userapi schema, versioned. Tables are prefixed `userapi_`; the history of applied
 * versions lives in `userapi_migrations`. The tables themselves arrive with the component's
 * issue (#5); until then start-up creates only the history table.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';

export const userapiMigrations: readonly ComponentMigration[] = [];
