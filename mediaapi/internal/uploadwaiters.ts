/**
 * Wakes downloads waiting for an asynchronous upload (`timeout_ms` on a media ID reserved by
 * `POST /v1/create` but not uploaded yet). Uploads in this process wake waiters at once;
 * waiters also re-check on a short timer, which covers uploads that reached another process.
 */
export class UploadWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves when `mediaId` is uploaded here, or after `ms`, whichever comes first. */
  wait(mediaId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiting.get(mediaId);
      if (!set) this.waiting.set(mediaId, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(mediaId) === set) this.waiting.delete(mediaId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
    });
  }

  notify(mediaId: string): void {
    for (const done of [...(this.waiting.get(mediaId) ?? [])]) done();
  }
}
