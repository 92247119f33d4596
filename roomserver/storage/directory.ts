/** Room aliases (local ones: #name:ourserver) and which rooms are published in the room directory. */
import type { Kysely } from 'kysely';
import type { RoomserverDatabase } from './tables.js';

export class DirectoryStore {
  constructor(private readonly db: Kysely<RoomserverDatabase>) {}

  /** False when the alias is taken already. */
  async setAlias(alias: string, roomId: string, creatorId: string): Promise<boolean> {
    const rows = await this.db
      .insertInto('roomserver_room_aliases')
      .values({ alias, room_id: roomId, creator_id: creatorId })
      .onConflict((oc) => oc.column('alias').doNothing())
      .returning('alias')
      .execute();
    return rows.length === 1;
  }

  async alias(alias: string): Promise<{ roomId: string; creatorId: string } | undefined> {
    const r = await this.db.selectFrom('roomserver_room_aliases').select(['room_id', 'creator_id']).where('alias', '=', alias).executeTakeFirst();
    return r && { roomId: r.room_id, creatorId: r.creator_id };
  }

  async aliasesOf(roomId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('roomserver_room_aliases').select('alias').where('room_id', '=', roomId).orderBy('alias').execute();
    return rows.map((r) => r.alias);
  }

  async removeAlias(alias: string): Promise<boolean> {
    const r = await this.db.deleteFrom('roomserver_room_aliases').where('alias', '=', alias).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async setPublished(roomId: string, published: boolean): Promise<void> {
    if (published) await this.db.insertInto('roomserver_published').values({ room_id: roomId }).onConflict((oc) => oc.column('room_id').doNothing()).execute();
    else await this.db.deleteFrom('roomserver_published').where('room_id', '=', roomId).execute();
  }

  async isPublished(roomId: string): Promise<boolean> {
    return (await this.db.selectFrom('roomserver_published').select('room_id').where('room_id', '=', roomId).executeTakeFirst()) !== undefined;
  }

  async published(): Promise<string[]> {
    const rows = await this.db.selectFrom('roomserver_published').select('room_id').orderBy('room_id').execute();
    return rows.map((r) => r.room_id);
  }
}
