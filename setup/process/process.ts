/**
 * The process lifecycle: components register shutdown steps as they start; a signal (or a
 * fatal start-up error) runs them in reverse order, each bounded in time, so that SIGINT
 * ends the process within a few seconds even when something hangs.
 */
import type { Logger } from 'pino';

type ShutdownStep = { name: string; run: () => Promise<void> | void };

export class ProcessContext {
  private readonly steps: ShutdownStep[] = [];
  private shuttingDown: Promise<void> | undefined;

  constructor(
    readonly logger: Logger,
    private readonly stepTimeoutMs = 5_000,
  ) {}

  /** Registers a step to run at shutdown; later registrations run first. */
  onShutdown(name: string, run: () => Promise<void> | void): void {
    this.steps.push({ name, run });
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown !== undefined;
  }

  shutdown(reason: string): Promise<void> {
    this.shuttingDown ??= this.runSteps(reason);
    return this.shuttingDown;
  }

  private async runSteps(reason: string): Promise<void> {
    this.logger.info({ reason }, 'shutting down');
    for (const step of [...this.steps].reverse()) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.stepTimeoutMs);
      });
      try {
        const outcome = await Promise.race([Promise.resolve(step.run()).then(() => 'done' as const), timeout]);
        if (outcome === 'timeout') this.logger.warn({ step: step.name, ms: this.stepTimeoutMs }, 'shutdown step timed out');
      } catch (err) {
        this.logger.error({ step: step.name, err }, 'shutdown step failed');
      } finally {
        clearTimeout(timer);
      }
    }
    this.logger.info('shutdown complete');
  }

  /** SIGINT/SIGTERM shut down cleanly; a second signal exits at once. */
  installSignalHandlers(exit: (code: number) => void = (code) => process.exit(code)): void {
    let signalled = false;
    const handler = (signal: NodeJS.Signals): void => {
      if (signalled) exit(130);
      signalled = true;
      void this.shutdown(signal).then(() => exit(0));
    };
    process.on('SIGINT', handler);
    process.on('SIGTERM', handler);
  }
}
