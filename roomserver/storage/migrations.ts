/**
 * The roomserver schema, versioned. Tables are prefixed `roomserver_`; the history of applied
 * versions lives in `roomserver_migrations`. The tables themselves arrive with the component's
 * issue (#4); until then start-up creates only the history table.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';

export const roomserverMigrations: readonly ComponentMigration[] = [];
