import { runGenerateKeys } from '../../setup/cli/generate-keys.js';

const code = await runGenerateKeys(process.argv.slice(2));
// -1: the server keeps running until a signal ends it.
if (code >= 0) process.exitCode = code;
