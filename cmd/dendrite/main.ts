import { runDendrite } from '../../setup/cli/dendrite.js';

const code = await runDendrite(process.argv.slice(2));
// -1: the server keeps running until a signal ends it.
if (code >= 0) process.exitCode = code;
