/**
 * The federationapi schema, versioned. Tables are prefixed `federationapi_`; the history of applied
 * versions lives in `federationapi_migrations`. The tables themselves arrive with the component's
 * issue (#8); until then start-up creates only the history table.
 */
import type { ComponentMigration } from '../../internal/sqlutil/index.js';

export const federationapiMigrations: readonly ComponentMigration[] = [];
