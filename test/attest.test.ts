// gate/attest.ts without a registry: the signing keys TAP users have (cosign's encrypted key, PKCS#8, SEC1), DSSE's
// pre-authentication encoding against the spec's own example, canonical JSON, the statement, and the admission
// policies of config/admission/ read against a statement the gate writes. No OPA or CUE evaluator installs here (no
// Go module proxy, and @open-policy-agent/opa-wasm needs a policy compiled by the opa binary), so the Rego is not run:
// the fields it and Kyverno's conditions read are checked, with the values they compare against.
import { generateKeyPairSync, createPublicKey, verify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseAllDocuments } from 'yaml'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  VERIFIER_ID,
  VSA_PREDICATE_TYPE,
  attestationLayers,
  attestationManifest,
  canonicalJson,
  loadCiphers,
  preAuthenticationEncoding,
  signEnvelope,
  signingKeyFrom,
  verdictStatement,
} from '../gate/attest.ts'
import { evaluate } from '../gate/evaluate.ts'
import { UsageError } from '../gate/vocabulary.ts'

const COSIGN_KEY = readFileSync(new URL('./fixtures/attest/conforma-cosign.key', import.meta.url), 'utf8')
const COSIGN_PUB = readFileSync(new URL('./fixtures/attest/conforma-cosign.pub', import.meta.url), 'utf8')
const TRIVY = JSON.parse(
  readFileSync(new URL('./fixtures/cyclonedx/trivy-fluentd.cdx.json', import.meta.url), 'utf8'),
) as unknown
const DIGEST = `sha256:${'4'.repeat(64)}`

beforeAll(loadCiphers)

const refusal = (pem: string, password?: string) => {
  try {
    signingKeyFrom(pem, password, '--attest-key k.pem')
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError)
    expect((error as UsageError).code).toBe('ATTEST_KEY')
    return (error as Error).message
  }
  throw new Error('the key was accepted')
}

describe('the signing key', () => {
  it("opens cosign's encrypted key (scrypt, nacl/secretbox) with COSIGN_PASSWORD, empty as cosign writes it", () => {
    const key = signingKeyFrom(COSIGN_KEY, '', '--attest-key cosign.key')
    expect(createPublicKey(key).export({ type: 'spki', format: 'pem' })).toBe(COSIGN_PUB)
    expect(signingKeyFrom(COSIGN_KEY, undefined, 'k').asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    expect(refusal(COSIGN_KEY, 'hunter2')).toBe(
      '--attest-key k.pem cannot be decrypted with the password given: check COSIGN_PASSWORD',
    )
  })

  it('reads PKCS#8 and SEC1 PEM, and an encrypted PKCS#8 with its password', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    for (const pem of [
      privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      privateKey.export({ type: 'sec1', format: 'pem' }).toString(),
    ])
      expect(signingKeyFrom(pem, undefined, 'k').asymmetricKeyType).toBe('ec')
    const encrypted = privateKey
      .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'correct horse' })
      .toString()
    expect(signingKeyFrom(encrypted, 'correct horse', 'k').asymmetricKeyType).toBe('ec')
    expect(refusal(encrypted, 'wrong')).toMatch(/cannot be decrypted .*: give its password in COSIGN_PASSWORD/)
  })

  it.each([
    ['a public key', COSIGN_PUB, /holds a PEM PUBLIC KEY: give a private key/],
    ['no PEM at all', 'hello', /holds no PEM key/],
    [
      'an RSA key',
      generateKeyPairSync('rsa', { modulusLength: 1024 })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString(),
      /is a rsa key: the attestation is signed with ECDSA P-256/,
    ],
    [
      'a P-384 key',
      generateKeyPairSync('ec', { namedCurve: 'secp384r1' })
        .privateKey.export({ type: 'pkcs8', format: 'pem' })
        .toString(),
      /is a ec secp384r1 key/,
    ],
    [
      'a cosign key whose JSON is not',
      '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGEga2V5\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----',
      /is not a cosign key/,
    ],
    [
      'a cosign key asking for a huge scrypt cost',
      `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify({ kdf: { name: 'scrypt', params: { N: 2 ** 30, r: 8, p: 1 }, salt: 'AA==' }, cipher: { name: 'nacl/secretbox', nonce: 'AA==' }, ciphertext: 'AA==' })).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----`,
      /is not a cosign key the gate can open \(scrypt with N up to 2\^17/,
    ],
  ])('refuses %s (exit 2, naming the key)', (_name, pem, message) => {
    expect(refusal(pem as string)).toMatch(message)
  })
})

describe('DSSE and the statement', () => {
  it("encodes as DSSE's protocol.md example says: DSSEv1 29 http://example.com/HelloWorld 11 hello world", () => {
    expect(preAuthenticationEncoding('http://example.com/HelloWorld', Buffer.from('hello world')).toString()).toBe(
      'DSSEv1 29 http://example.com/HelloWorld 11 hello world',
    )
  })

  it('signs the PAE of the statement, which the public key verifies (and not a changed payload)', () => {
    const key = signingKeyFrom(COSIGN_KEY, '', 'k')
    const envelope = signEnvelope({ _type: 'https://in-toto.io/Statement/v1' }, key)
    const payload = Buffer.from(envelope.payload, 'base64')
    const sig = Buffer.from(envelope.signatures[0]!.sig, 'base64')
    const pae = preAuthenticationEncoding(envelope.payloadType, payload)
    expect(verify('sha256', pae, COSIGN_PUB, sig)).toBe(true)
    expect(verify('sha256', preAuthenticationEncoding(envelope.payloadType, Buffer.from('{}')), COSIGN_PUB, sig)).toBe(
      false,
    )
  })

  it('canonicalizes as RFC 8785 does for the data it hashes: sorted keys, no space, undefined left out', () => {
    expect(canonicalJson({ b: [2, { z: null, a: 'é"' }], a: true, c: undefined })).toBe(
      '{"a":true,"b":[2,{"a":"é\\"","z":null}]}',
    )
  })

  it('keeps the attestations already at the tag, and refuses to overwrite anything else', () => {
    const layer = { mediaType: 'application/vnd.dsse.envelope.v1+json', size: 2, digest: `sha256:${'a'.repeat(64)}` }
    const { manifest } = attestationManifest([], layer)
    expect(attestationLayers(manifest, 't')).toEqual([layer])
    expect(() => attestationLayers(Buffer.from('{"manifests": []}'), 'sha256-x.att')).toThrow(
      'the tag sha256-x.att holds something that is not a cosign manifest: the gate does not overwrite it',
    )
  })
})

describe('the admission policies read what the gate writes', () => {
  const statement = verdictStatement({
    image: { reference: `registry.example.com/tap/workloads/app@${DIGEST}`, digest: DIGEST },
    repository: 'registry.example.com/tap/workloads/app',
    evaluation: evaluate(TRIVY, 'critical'),
    gate: 'critical',
    mode: 'enforce',
    policy: { gate: 'critical' },
    inputs: [],
    now: Date.parse('2026-12-01T12:00:00Z'),
  })
  const documents = (name: string) =>
    parseAllDocuments(readFileSync(new URL(`../config/admission/${name}`, import.meta.url), 'utf8')).map((document) =>
      document.toJS(),
    )

  it("the ClusterImagePolicy's Rego compares the fields the statement has, with the gate's values", () => {
    const [policy] = documents('cluster-image-policy.yaml')
    const attestation = policy.spec.authorities[0].attestations[0]
    expect(attestation.predicateType).toBe(VSA_PREDICATE_TYPE)
    const rego: string = attestation.policy.data
    const compared = [...rego.matchAll(/input\.([\w.]+) == "([^"]+)"/g)].map(([, path, value]) => [path, value])
    expect(compared).toEqual([
      ['predicateType', VSA_PREDICATE_TYPE],
      ['predicate.verifier.id', VERIFIER_ID],
      ['predicate.verificationResult', 'PASSED'],
    ])
    const at = (path: string) =>
      path.split('.').reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], statement)
    expect(at('predicateType')).toBe(VSA_PREDICATE_TYPE)
    expect(at('predicate.verifier.id')).toBe(VERIFIER_ID)
    expect(at('predicate.verificationResult')).toBe('FAILED') // two criticals: this image would be refused
    expect(rego).toContain('time.parse_rfc3339_ns(input.predicate.timeVerified)')
    expect(Number.isNaN(Date.parse(statement.predicate.timeVerified))).toBe(false)
  })

  it("Kyverno's conditions read verificationResult, verifier.id and timeVerified of the predicate", () => {
    const [policy] = documents('kyverno-cluster-policy.yaml')
    const attestation = policy.spec.rules[0].verifyImages[0].attestations[0]
    expect(attestation.type).toBe(VSA_PREDICATE_TYPE)
    const conditions = attestation.conditions[0].all as Array<{ key: string; value: string }>
    const predicate = statement.predicate as unknown as Record<string, unknown>
    const read = (key: string) =>
      /^\{\{ ([\w.]+) \}\}$/
        .exec(key)?.[1]!
        .split('.')
        .reduce<unknown>((value, part) => (value as Record<string, unknown>)[part], predicate)
    expect(conditions.slice(0, 2).map((condition) => [read(condition.key), condition.value])).toEqual([
      ['FAILED', 'PASSED'],
      [VERIFIER_ID, VERIFIER_ID],
    ])
    expect(conditions[2]!.key).toBe("{{ time_since('', '{{ timeVerified }}', '') }}")
    expect(typeof predicate.timeVerified).toBe('string')
  })
})
