import { X509Certificate, createPrivateKey } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { generateTlsMaterial } from './tlscert.js';

describe('generateTlsMaterial', () => {
  it('makes a PKCS#1 RSA key and a self-signed certificate that TLS accepts', async () => {
    const { certPem, keyPem } = await generateTlsMaterial({ hosts: ['localhost', '127.0.0.1'], keySize: 2048 });
    expect(keyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    const cert = new X509Certificate(certPem);
    expect(cert.subject).toContain('CN=localhost');
    expect(cert.subjectAltName).toContain('DNS:localhost');
    expect(cert.subjectAltName).toContain('IP Address:127.0.0.1');
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(keyPem))).toBe(true);
    expect(() => createSecureContext({ cert: certPem, key: keyPem })).not.toThrow();
  });

  it('signs with an authority when given one', async () => {
    const ca = await generateTlsMaterial({ hosts: ['Test CA'], keySize: 2048 });
    const leaf = await generateTlsMaterial({ hosts: ['hs1.test'], keySize: 2048, authority: ca });
    const leafCert = new X509Certificate(leaf.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(leafCert.verify(caCert.publicKey)).toBe(true);
    expect(leafCert.verify(leafCert.publicKey)).toBe(false);
    expect(leafCert.issuer).toBe(caCert.subject);
  });
});
