import { runCreateAccount } from '../../setup/cli/create-account.js';

process.exitCode = await runCreateAccount(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
