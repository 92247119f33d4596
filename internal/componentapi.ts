/** Names and the common status query that every component's internal API answers. */

export const componentNames = ['roomserver', 'userapi', 'syncapi', 'federationapi', 'mediaapi', 'clientapi'] as const;
export type ComponentName = (typeof componentNames)[number];

export function isComponentName(name: string): name is ComponentName {
  return (componentNames as readonly string[]).includes(name);
}

/** Answered by `queryComponentStatus`: which process serves a component, and since when. */
export interface ComponentStatus {
  component: ComponentName;
  serverName: string;
  pid: number;
  startedAt: number;
}

export type EmptyRequest = Record<string, never>;

export interface StatusAPI {
  queryComponentStatus(req: EmptyRequest): Promise<ComponentStatus>;
}
