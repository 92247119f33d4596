/**
 * The syncapi schema, versioned. Tables are prefixed `syncapi_`; the history of applied
 * versions lives in `syncapi_migrations`. The tables themselves arrive with the component's
 * issue (#7); until then start-up creates only the history table.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';

export const syncapiMigrations: readonly ComponentMigration[] = [];
