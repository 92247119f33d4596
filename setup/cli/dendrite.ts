/**
 * `dendrite`: the server. Flags as Dendrite's. Every start-up problem ends the process with
 * one line on stderr naming the cause and a non-zero status, before anything listens.
 */
import { readConfigFile, type Config } from '../config/config.js';
import { parseFlags, reportFlagError, stringFlag, FlagError, type FlagSpec } from '../flags.js';
import { createLogger } from '../logging.js';
import { parseBindAddress } from '../base/listen.js';
import { startMonolith } from '../monolith.js';
import { parseComponentList, startPolylith } from '../polylith.js';
import { serverSoftware } from '../../internal/version.js';

const flags: FlagSpec[] = [
  { name: 'config', kind: 'string', usage: 'The path to the config file', default: 'dendrite.yaml' },
  { name: 'http-bind-address', kind: 'string', usage: 'The HTTP listening port for the server', default: ':8008' },
  { name: 'https-bind-address', kind: 'string', usage: 'The HTTPS listening port for the server', default: ':8448' },
  { name: 'tls-cert', kind: 'string', usage: 'The PEM formatted X509 certificate to use for TLS' },
  { name: 'tls-key', kind: 'string', usage: 'The PEM private key to use for TLS' },
  { name: 'really-enable-open-registration', kind: 'bool', usage: 'Allow open registration without verification', default: false },
  { name: 'components', kind: 'string', usage: 'Polylith: run only these components (comma-separated), e.g. roomserver,syncapi' },
  { name: 'version', kind: 'bool', usage: 'Shows the current version and exits immediately', default: false },
];

export async function runDendrite(argv: readonly string[]): Promise<number> {
  let values;
  try {
    values = parseFlags(argv, flags).values;
  } catch (err) {
    if (err instanceof FlagError) return reportFlagError(err, 'dendrite', flags);
    throw err;
  }
  if (values.version === true) {
    process.stdout.write(`${serverSoftware.version}\n`);
    return 0;
  }
  let cfg: Config;
  try {
    cfg = readConfigFile(stringFlag(values, 'config'));
    if (values['really-enable-open-registration'] !== true) cfg.clientApi.openRegistrationWithoutVerificationEnabled = false;
  } catch (err) {
    process.stderr.write(`dendrite: config: ${(err as Error).message}\n`);
    return 1;
  }
  const logger = createLogger(cfg.logging);
  try {
    const tlsCert = stringFlag(values, 'tls-cert');
    const tlsKey = stringFlag(values, 'tls-key');
    const common = {
      cfg,
      logger,
      httpBind: parseBindAddress(stringFlag(values, 'http-bind-address')),
      // Dendrite serves HTTPS only when given a certificate.
      ...(tlsCert && tlsKey ? { httpsBind: parseBindAddress(stringFlag(values, 'https-bind-address')), tls: { certFile: tlsCert, keyFile: tlsKey } } : {}),
    };
    const componentsFlag = stringFlag(values, 'components');
    const server = componentsFlag
      ? await startPolylith({ ...common, components: parseComponentList(componentsFlag) })
      : await startMonolith(common);
    server.process.installSignalHandlers((code) => {
      logger.flush();
      process.exit(code);
    });
    return -1; // keep running
  } catch (err) {
    logger.flush();
    process.stderr.write(`dendrite: ${(err as Error).message}\n`);
    return 1;
  }
}
