import { runGenerateConfig } from '../../setup/cli/generate-config.js';

const code = await runGenerateConfig(process.argv.slice(2));
// -1: the server keeps running until a signal ends it.
if (code >= 0) process.exitCode = code;
