// The egress proxy's certificate authority: sandboxes trust it, and the proxy shows a certificate it
// signs for a host whose requests it must read (to apply a rule's transform), as E2B's egress proxy
// does. Node's crypto makes keys but cannot sign a certificate, so certificates are built with
// node-forge; its keys are RSA, made by Node's crypto (forge's own key generation is pure JavaScript).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { type SecureContext, createSecureContext } from 'node:tls';
import forge from 'node-forge';
import type { Clock } from '../../core/index.js';

const DAY_MS = 86_400_000;
/** Leaf certificates made and kept, by host; a sandbox's hosts are few, so this only bounds a misbehaving one. */
const LEAVES_KEPT = 1_000;

function rsaKeys(): { readonly privateKey: forge.pki.rsa.PrivateKey; readonly publicKey: forge.pki.rsa.PublicKey; readonly pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

function serial(): string {
  // Positive (its first bit clear) and unique: RFC 5280 §4.1.2.2.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

/** Whether `host` is an IP address (a certificate names it as an address, not as a DNS name). */
function isAddress(host: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':');
}

/**
 * A certificate authority of one server's run, and the certificates it signs for hosts. Its key is
 * made on first use (an RSA key takes tens of milliseconds), so a server that starts no routed sandbox
 * never makes one.
 */
export class EgressAuthority {
  private made: { readonly certificate: string; readonly key: forge.pki.rsa.PrivateKey } | undefined;
  private readonly subject: forge.pki.CertificateField[] = [
    { name: 'commonName', value: 'tradeswarm local cloud egress proxy' },
    { name: 'organizationName', value: 'tradeswarm' },
  ];
  private readonly leaves = new Map<string, SecureContext>();

  constructor(private readonly clock: Clock) {}

  /** The authority's certificate, PEM: what a sandbox adds to the certificates it trusts. */
  get certificate(): string {
    return this.own().certificate;
  }

  private own(): { readonly certificate: string; readonly key: forge.pki.rsa.PrivateKey } {
    if (this.made !== undefined) return this.made;
    const keys = rsaKeys();
    const cert = forge.pki.createCertificate();
    cert.serialNumber = serial();
    cert.publicKey = keys.publicKey;
    this.validity(cert, 365);
    cert.setSubject(this.subject);
    cert.setIssuer(this.subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    cert.sign(keys.privateKey, forge.md.sha256.create());
    this.made = { certificate: forge.pki.certificateToPem(cert), key: keys.privateKey };
    return this.made;
  }

  private validity(cert: forge.pki.Certificate, days: number): void {
    // A day back, for clocks a little behind the server's.
    cert.validity.notBefore = new Date(this.clock.now() - DAY_MS);
    cert.validity.notAfter = new Date(this.clock.now() + days * DAY_MS);
  }

  /** A TLS context that presents a certificate for `host`, signed by this authority (made once per host). */
  contextFor(host: string): SecureContext {
    const name = host.toLowerCase();
    const kept = this.leaves.get(name);
    if (kept !== undefined) return kept;
    const keys = rsaKeys();
    const cert = forge.pki.createCertificate();
    cert.serialNumber = serial();
    cert.publicKey = keys.publicKey;
    this.validity(cert, 30);
    cert.setSubject([{ name: 'commonName', value: name.slice(0, 64) }]);
    cert.setIssuer(this.subject);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [isAddress(name) ? { type: 7, ip: name } : { type: 2, value: name }] },
    ]);
    const authority = this.own();
    cert.sign(authority.key, forge.md.sha256.create());
    const context = createSecureContext({ cert: `${forge.pki.certificateToPem(cert)}${authority.certificate}`, key: keys.pem });
    if (this.leaves.size >= LEAVES_KEPT) this.leaves.delete(this.leaves.keys().next().value as string);
    this.leaves.set(name, context);
    return context;
  }
}
