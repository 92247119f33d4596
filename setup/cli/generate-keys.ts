/**
 * `generate-keys`: the Ed25519 signing key (matrix_key.pem) and TLS material, in Dendrite's
 * formats. Exit status 0 on success: Sytest refuses to start otherwise.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { formatMatrixKeyPem, generateSigningKey } from '../../internal/matrix/index.js';
import { FlagError, parseFlags, reportFlagError, stringFlag, usageText, type FlagSpec } from '../flags.js';
import { generateTlsMaterial } from '../tlscert.js';

const flags: FlagSpec[] = [
  { name: 'private-key', kind: 'string', usage: 'An Ed25519 private key to generate for use for object signing' },
  { name: 'tls-cert', kind: 'string', usage: 'An X509 certificate file to generate for use for TLS' },
  { name: 'tls-key', kind: 'string', usage: 'An RSA private key file to generate for use for TLS' },
  { name: 'tls-authority-cert', kind: 'string', usage: 'Optional: Create TLS certificate/keys based on this CA authority' },
  { name: 'tls-authority-key', kind: 'string', usage: 'Optional: Create TLS certificate/keys based on this CA authority' },
  { name: 'server', kind: 'string', usage: 'Optional: Create TLS certificate/keys with this domain name set' },
  { name: 'keysize', kind: 'int', usage: 'Optional: Create TLS RSA private key with the given key size', default: 4096 },
];

function writeFile(file: string, text: string, mode: number): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, text, { mode });
}

export async function runGenerateKeys(argv: readonly string[]): Promise<number> {
  try {
    const { values } = parseFlags(argv, flags);
    const privateKey = stringFlag(values, 'private-key');
    const tlsCert = stringFlag(values, 'tls-cert');
    const tlsKey = stringFlag(values, 'tls-key');
    if (!privateKey && !tlsCert && !tlsKey) {
      process.stderr.write(`generate-keys: nothing to do: give --private-key and/or --tls-cert with --tls-key\n${usageText('generate-keys', flags)}\n`);
      return 2;
    }
    if (Boolean(tlsCert) !== Boolean(tlsKey)) throw new Error('--tls-cert and --tls-key must be given together');
    if (privateKey) {
      // A signing key is this server's identity; overwriting it would orphan every signature.
      if (existsSync(privateKey)) throw new Error(`${privateKey} already exists; refusing to overwrite a signing key`);
      const { keyId, seed } = generateSigningKey();
      writeFile(privateKey, formatMatrixKeyPem(keyId, seed), 0o600);
      process.stderr.write(`Created private key at: ${privateKey}\n`);
    }
    if (tlsCert && tlsKey) {
      const authCert = stringFlag(values, 'tls-authority-cert');
      const authKey = stringFlag(values, 'tls-authority-key');
      if (Boolean(authCert) !== Boolean(authKey)) throw new Error('--tls-authority-cert and --tls-authority-key must be given together');
      const server = stringFlag(values, 'server');
      const material = await generateTlsMaterial({
        hosts: server ? [server.replace(/:\d+$/, '')] : ['localhost', '127.0.0.1', '::1'],
        keySize: Number(values.keysize),
        ...(authCert ? { authority: { certPem: readFileSync(authCert, 'utf8'), keyPem: readFileSync(authKey, 'utf8') } } : {}),
      });
      writeFile(tlsCert, material.certPem, 0o644);
      writeFile(tlsKey, material.keyPem, 0o600);
      process.stderr.write(`Created TLS cert file at: ${tlsCert}\nCreated TLS key file at: ${tlsKey}\n`);
    }
    return 0;
  } catch (err) {
    if (err instanceof FlagError) return reportFlagError(err, 'generate-keys', flags);
    process.stderr.write(`generate-keys: ${(err as Error).message}\n`);
    return 1;
  }
}
