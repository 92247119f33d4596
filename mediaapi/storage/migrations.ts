/**
 * The mediaapi schema, versioned. Tables are prefixed `mediaapi_`; the history of applied
 * versions lives in `mediaapi_migrations`. The tables themselves arrive with the component's
 * issue (#9); until then start-up creates only the history table.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';

export const mediaapiMigrations: readonly ComponentMigration[] = [];
