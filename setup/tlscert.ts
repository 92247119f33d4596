/**
 * TLS material for `generate-keys`: an RSA key (PEM "RSA PRIVATE KEY", PKCS#1, as Dendrite
 * writes it) and an X.509 certificate, self-signed or signed by a given authority.
 * X.509 building comes from @peculiar/x509; the key maths is node:crypto's WebCrypto.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs this polyfill first.
import 'reflect-metadata';
import { createPrivateKey, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const rsaAlgorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]) };

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
}

export interface TlsOptions {
  /** Host names (and IP literals) the certificate is for. */
  hosts: string[];
  keySize: number;
  validityDays?: number;
  authority?: { certPem: string; keyPem: string };
}

async function importSigningKey(pem: string): Promise<CryptoKey> {
  // Accepts PKCS#1 or PKCS#8 PEM; WebCrypto wants PKCS#8 DER.
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, rsaAlgorithm, false, ['sign']) as Promise<CryptoKey>;
}

export async function generateTlsMaterial(opts: TlsOptions): Promise<TlsMaterial> {
  if (opts.hosts.length === 0) throw new Error('a TLS certificate needs at least one host name');
  const keys = (await webcrypto.subtle.generateKey({ ...rsaAlgorithm, modulusLength: opts.keySize }, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (opts.validityDays ?? 3650) * 86_400_000);
  const subject = `CN=${opts.hosts[0]}, O=Dendrite`;
  const altNames = new x509.SubjectAlternativeNameExtension(
    opts.hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h })),
  );
  const serialNumber = webcrypto.getRandomValues(new Uint8Array(16)).reduce((s, b) => s + b.toString(16).padStart(2, '0'), '').replace(/^[89a-f]/, '1');
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    altNames,
  ];
  let cert: x509.X509Certificate;
  if (opts.authority) {
    const ca = new x509.X509Certificate(opts.authority.certPem);
    cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      subject,
      issuer: ca.subject,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: await importSigningKey(opts.authority.keyPem),
      signingAlgorithm: rsaAlgorithm,
      extensions,
    });
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber,
      name: subject,
      notBefore,
      notAfter,
      keys,
      signingAlgorithm: rsaAlgorithm,
      extensions,
    });
  }
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs1', format: 'pem' }).toString();
  return { certPem: cert.toString('pem') + '\n', keyPem };
}
