/**
 * Loads the server's signing key (`global.private_key`) and old keys into the identity that
 * components sign with. Problems name the file: a server without its key cannot start.
 */
import { readFileSync } from 'node:fs';
import { parseMatrixKeyPem, signingKeyFromSeed } from '../internal/matrix/index.js';
import { signingIdentityFromKey, type SigningIdentity } from '../internal/signingidentity.js';
import type { Config } from './config/config.js';

function readKeyFile(file: string, key: string): { keyId: string; seed: Buffer } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = code === 'ENOENT' ? ' (create one with: generate-keys --private-key <file>)' : '';
    throw new Error(`${key}: cannot read signing key ${file}: ${code ?? String(err)}${hint}`);
  }
  try {
    return parseMatrixKeyPem(text);
  } catch (err) {
    throw new Error(`${key}: ${file} is not a Matrix signing key: ${(err as Error).message}`);
  }
}

export function loadSigningIdentity(cfg: Config): SigningIdentity {
  const { keyId, seed } = readKeyFile(cfg.global.privateKeyPath, 'global.private_key');
  const key = signingKeyFromSeed(seed, keyId);
  const serverName = cfg.global.serverName;
  const oldKeys = cfg.global.oldPrivateKeys.map((old, i) => {
    if (old.privateKeyPath) {
      const k = readKeyFile(old.privateKeyPath, `global.old_private_keys[${i}].private_key`);
      return { keyId: k.keyId, publicKeyBase64: signingKeyFromSeed(k.seed, k.keyId).publicKeyBase64, expiredTs: old.expiredAt };
    }
    return { keyId: old.keyId ?? '', publicKeyBase64: old.publicKey ?? '', expiredTs: old.expiredAt };
  });
  return signingIdentityFromKey(serverName, key, { oldKeys, keyValidityPeriodMs: cfg.global.keyValidityPeriodMs });
}
