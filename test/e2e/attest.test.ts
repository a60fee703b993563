// --attest through the built gate against a real registry (Debian's docker-registry): the verdict signed as an in-toto
// statement with the SLSA VSA predicate, in a DSSE envelope, pushed where cosign and the policy-controller look
// (`sha256-<hex>.att`), read back and checked against cosign's documented layout; every signature verified by code we
// did not write: openssl over the PAE bytes, and Debian's python3-securesystemslib.
import { execFile } from 'node:child_process'
import { generateKeyPairSync, createPublicKey, createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { http, HttpResponse } from 'msw'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { missingRegistryTools, REGISTRY_PASSWORD, REGISTRY_USER, startRegistry } from '../support/registry.ts'
import type { Registry } from '../support/registry.ts'
import { runGate, writeFiles } from '../support/gate.ts'
import { compileSchema } from '../support/json-schema.ts'
import { makeTls, startSimulator } from '../support/simulator.ts'

const run = promisify(execFile)
const missingTools = await missingRegistryTools()
const FIXTURES = new URL('../fixtures/attest/', import.meta.url)
const fixture = (name: string) => new URL(name, FIXTURES).pathname
const TRIVY = new URL('../fixtures/cyclonedx/trivy-fluentd.cdx.json', import.meta.url).pathname
const DIGEST = `sha256:${'4'.repeat(64)}`
const VSA = 'https://slsa.dev/verification_summary/v1'

const validateStatement = compileSchema(JSON.parse(readFileSync(fixture('in-toto-statement-v1.schema.json'), 'utf8')))
const validateVsa = compileSchema(JSON.parse(readFileSync(fixture('slsa-vsa-v1.schema.json'), 'utf8')))

/** The Python that has Debian's securesystemslib (CI installs python3-securesystemslib). */
async function securesystemslibPython(): Promise<string> {
  for (const python of ['/usr/bin/python3', 'python3'])
    if (
      await run(python, ['-c', 'import securesystemslib.signer']).then(
        () => true,
        () => false,
      )
    )
      return python
  throw new Error('no python3 with securesystemslib: install python3-securesystemslib (scripts/lib.sh does)')
}

const VERIFY_DSSE = `
import base64, json, sys
from securesystemslib.signer import SSlibKey, Signature
envelope = json.load(open(sys.argv[1]))
key = SSlibKey.from_dict("ab" * 32, {"keytype": "ecdsa", "scheme": "ecdsa-sha2-nistp256",
                                     "keyval": {"public": open(sys.argv[2]).read()}})
payload = base64.b64decode(envelope["payload"])
kind = envelope["payloadType"].encode()
pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
for entry in envelope["signatures"]:
    key.verify_signature(Signature("ab" * 32, base64.b64decode(entry["sig"]).hex()), pae)
print("verified", len(envelope["signatures"]))
`

describe.skipIf(missingTools.length > 0)('--attest against a real registry', () => {
  let registry: Registry
  let files: Record<string, string>
  let python: string

  beforeAll(async () => {
    registry = await startRegistry('basic')
    python = await securesystemslibPython()
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    const ed25519 = generateKeyPairSync('ed25519').privateKey
    files = writeFiles({
      'config.json': JSON.stringify({
        auths: { [registry.host]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
      }),
      'wrong.json': JSON.stringify({ auths: { [registry.host]: { username: REGISTRY_USER, password: 'not-it' } } }),
      'ca.crt': registry.tls.caCert,
      'cosign.key': privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'cosign.pub': createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
      'ed25519.key': ed25519.export({ type: 'pkcs8', format: 'pem' }).toString(),
      'clean.cdx.json': JSON.stringify({
        bomFormat: 'CycloneDX',
        specVersion: '1.6',
        metadata: { component: { type: 'container', name: 'app' } },
        components: [],
        vulnerabilities: [],
      }),
    })
  })
  afterAll(async () => registry?.close())

  const imageOf = (repository: string) => `${registry.host}/${repository}@${DIGEST}`
  const gate = (args: string[], env: Record<string, string> = {}) =>
    runGate(args, {
      env: {
        POLICY_REGISTRY_CONFIG: files['config.json']!,
        POLICY_REGISTRY_CA_CERT: files['ca.crt']!,
        POLICY_ATTEST_KEY: files['cosign.key']!,
        POLICY_POLL_INTERVAL: '100ms',
        ...env,
      },
    })

  /** What cosign and the policy-controller read: the manifest at sha256-<hex>.att and each envelope in it. */
  async function attestationsOf(repository: string) {
    const tag = `${DIGEST.replace(':', '-')}.att`
    const answer = await registry.read(
      repository,
      `/v2/${repository}/manifests/${tag}`,
      'application/vnd.oci.image.manifest.v1+json',
    )
    expect(answer.status).toBe(200)
    const manifest = JSON.parse(answer.body.toString('utf8'))
    const config = await registry.read(repository, `/v2/${repository}/blobs/${manifest.config.digest}`)
    const envelopes = []
    for (const layer of manifest.layers) {
      const blob = await registry.read(repository, `/v2/${repository}/blobs/${layer.digest}`)
      expect(`sha256:${createHash('sha256').update(blob.body).digest('hex')}`).toBe(layer.digest)
      envelopes.push(JSON.parse(blob.body.toString('utf8')))
    }
    return { manifest, config: JSON.parse(config.body.toString('utf8')), envelopes }
  }

  /** Verified by openssl (ECDSA P-256 over the PAE bytes) and by securesystemslib; the statement it carries. */
  async function verified(envelope: { payloadType: string; payload: string; signatures: Array<{ sig: string }> }) {
    const dir = join(files['config.json']!, '..', `verify-${Math.random().toString(16).slice(2)}`)
    mkdirSync(dir)
    const payload = Buffer.from(envelope.payload, 'base64')
    const kind = Buffer.from(envelope.payloadType)
    const pae = Buffer.concat([
      Buffer.from(`DSSEv1 ${kind.length} `),
      kind,
      Buffer.from(` ${payload.length} `),
      payload,
    ])
    writeFileSync(join(dir, 'pae.bin'), pae)
    writeFileSync(join(dir, 'sig.der'), Buffer.from(envelope.signatures[0]!.sig, 'base64'))
    writeFileSync(join(dir, 'envelope.json'), JSON.stringify(envelope))
    const openssl = await run('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      files['cosign.pub']!,
      '-signature',
      join(dir, 'sig.der'),
      join(dir, 'pae.bin'),
    ])
    expect(openssl.stdout.trim()).toBe('Verified OK')
    const sslib = await run(python, ['-c', VERIFY_DSSE, join(dir, 'envelope.json'), files['cosign.pub']!])
    expect(sslib.stdout.trim()).toBe('verified 1')
    return JSON.parse(payload.toString('utf8'))
  }

  it("a pass: a signed VSA with PASSED, the image by digest, the scan by its sha256, in cosign's layout", async () => {
    const repository = 'project/passes'
    const results = join(files['config.json']!, '..', 'results-pass')
    mkdirSync(results)
    const gated = await gate([
      '--gate',
      'high',
      '--input',
      files['clean.cdx.json']!,
      '--attest',
      '--results-dir',
      results,
      imageOf(repository),
    ])
    expect(gated.code, gated.stderr).toBe(EXIT.PASS)
    expect(gated.stderr).toMatch(
      new RegExp(
        `attested: PASSED for ${DIGEST}, pushed as ${registry.host}/${repository}:sha256-4+\\.att \\(sha256:[0-9a-f]{64}\\)`,
      ),
    )
    const { manifest, config, envelopes } = await attestationsOf(repository)
    // cosign's layout (specs/ATTESTATION_SPEC.md): an OCI image manifest, one DSSE layer per attestation.
    expect(manifest).toMatchObject({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' })
    expect(manifest.config.mediaType).toBe('application/vnd.oci.image.config.v1+json')
    expect(manifest.layers).toEqual([
      expect.objectContaining({
        mediaType: 'application/vnd.dsse.envelope.v1+json',
        annotations: { predicateType: VSA },
      }),
    ])
    expect(config.rootfs.diff_ids).toEqual([manifest.layers[0].digest])
    expect(envelopes[0]).toMatchObject({ payloadType: 'application/vnd.in-toto+json', signatures: [{ keyid: '' }] })
    const statement = await verified(envelopes[0])
    expect(validateStatement(statement), JSON.stringify(validateStatement.errors)).toBe(true)
    expect(validateVsa(statement.predicate), JSON.stringify(validateVsa.errors)).toBe(true)
    expect(statement).toMatchObject({
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `${registry.host}/${repository}`, digest: { sha256: '4'.repeat(64) } }],
      predicateType: VSA,
      predicate: {
        verifier: { id: 'https://amr-policy-gate.github.io/verifier' },
        resourceUri: imageOf(repository),
        policy: {
          uri: 'https://amr-policy-gate.github.io/policy/v1',
          digest: { sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
        },
        inputAttestations: [
          {
            uri: files['clean.cdx.json'],
            digest: { sha256: createHash('sha256').update(readFileSync(files['clean.cdx.json']!)).digest('hex') },
          },
        ],
        verificationResult: 'PASSED',
        verifiedLevels: ['AMR_POLICY_GATE_HIGH'],
        'https://amr-policy-gate.github.io/vsa/counts/v1': { gate: 'high', mode: 'enforce', critical: 0, blocking: 0 },
      },
    })
    expect(Date.now() - Date.parse(statement.predicate.timeVerified)).toBeLessThan(10 * 60_000)
    expect(readFileSync(join(results, 'verdict'), 'utf8')).toBe('pass')
  })

  it('a fail, then audit mode: each verdict appended to the same tag, FAILED with the counts', async () => {
    const repository = 'project/fails'
    const failed = await gate(['--gate', 'high', '--input', TRIVY, '--attest', imageOf(repository)])
    expect(failed.code).toBe(EXIT.VIOLATION)
    expect(failed.stderr).toContain(`attested: FAILED for ${DIGEST}`)
    const audited = await gate([
      '--gate',
      'critical',
      '--mode',
      'audit',
      '--input',
      TRIVY,
      '--attest',
      imageOf(repository),
    ])
    expect(audited.code).toBe(EXIT.PASS)
    const { manifest, config, envelopes } = await attestationsOf(repository)
    expect(manifest.layers).toHaveLength(2)
    expect(config.rootfs.diff_ids).toEqual(manifest.layers.map((layer: { digest: string }) => layer.digest))
    const [enforced, audit] = await Promise.all(envelopes.map(verified))
    expect(enforced.predicate).toMatchObject({
      verificationResult: 'FAILED',
      verifiedLevels: ['FAILED'],
      'https://amr-policy-gate.github.io/vsa/counts/v1': {
        gate: 'high',
        mode: 'enforce',
        critical: 2,
        high: 1,
        blocking: 3,
      },
    })
    expect(audit.predicate).toMatchObject({
      verificationResult: 'FAILED',
      'https://amr-policy-gate.github.io/vsa/counts/v1': { gate: 'critical', mode: 'audit', blocking: 2 },
    })
    // Another policy, another digest: what decided is part of what is signed.
    expect(audit.predicate.policy.digest.sha256).not.toBe(enforced.predicate.policy.digest.sha256)
  })

  it("signs with cosign's encrypted key (COSIGN_PASSWORD), which verifies with its public key", async () => {
    const repository = 'project/cosign-key'
    const gated = await gate(['--gate', 'high', '--input', files['clean.cdx.json']!, '--attest', imageOf(repository)], {
      POLICY_ATTEST_KEY: fixture('conforma-cosign.key'),
      COSIGN_PASSWORD: '',
    })
    expect(gated.code, gated.stderr).toBe(EXIT.PASS)
    const { envelopes } = await attestationsOf(repository)
    const envelope = envelopes[0]
    const payload = Buffer.from(envelope.payload, 'base64')
    const pae = Buffer.concat([
      Buffer.from('DSSEv1 28 application/vnd.in-toto+json '),
      Buffer.from(`${payload.length} `),
      payload,
    ])
    const dir = join(files['config.json']!, '..')
    writeFileSync(join(dir, 'cosign-pae.bin'), pae)
    writeFileSync(join(dir, 'cosign-sig.der'), Buffer.from(envelope.signatures[0].sig, 'base64'))
    const openssl = await run('openssl', [
      'dgst',
      '-sha256',
      '-verify',
      fixture('conforma-cosign.pub'),
      '-signature',
      join(dir, 'cosign-sig.der'),
      join(dir, 'cosign-pae.bin'),
    ])
    expect(openssl.stdout.trim()).toBe('Verified OK')
  })

  it.each([
    [
      'a wrong password',
      { POLICY_ATTEST_KEY: fixture('conforma-cosign.key'), COSIGN_PASSWORD: 'not-the-password' },
      /cannot be decrypted with the password given: check COSIGN_PASSWORD/,
    ],
    [
      'a key that is not there',
      { POLICY_ATTEST_KEY: '/nonexistent/cosign.key' },
      /cannot read the signing key named by POLICY_ATTEST_KEY \/nonexistent\/cosign.key \(ENOENT\)/,
    ],
    [
      'a key that is not P-256',
      { POLICY_ATTEST_KEY: 'ED25519' },
      /is a ed25519 key: the attestation is signed with ECDSA P-256/,
    ],
    ['no key', { POLICY_ATTEST_KEY: '' }, /--attest signs the verdict: give the key with --attest-key FILE/],
  ])('%s is exit 2 before any request, naming the key', async (_name, env, message) => {
    const repository = 'project/never-pushed'
    const key = env.POLICY_ATTEST_KEY === 'ED25519' ? { POLICY_ATTEST_KEY: files['ed25519.key']! } : {}
    const gated = await gate(['--gate', 'high', '--input', TRIVY, '--attest', imageOf(repository)], { ...env, ...key })
    expect(gated.code).toBe(EXIT.USAGE)
    expect(gated.stderr).toMatch(message)
    expect(gated.stderr).not.toContain('not-the-password')
    expect(gated.stdout).not.toContain('FAIL:') // no verdict was reached: nothing was read or asked
    const tag = await registry.read(repository, `/v2/${repository}/manifests/${DIGEST.replace(':', '-')}.att`)
    expect(tag.status).toBe(404)
  })

  it('a refused push: the verdict stands (printed, results written), and the run exits 3 ATTESTATION_NOT_PUSHED', async () => {
    const results = join(files['config.json']!, '..', 'results-refused')
    mkdirSync(results)
    const gated = await gate(
      ['--gate', 'high', '--input', TRIVY, '--attest', '--results-dir', results, imageOf('project/refused')],
      { POLICY_REGISTRY_CONFIG: files['wrong.json']! },
    )
    expect(gated.code).toBe(EXIT.NO_VERDICT)
    expect(gated.stdout).toContain('FAIL: 3 vulnerabilities (3 findings) block at gate high.')
    const written = Object.fromEntries(
      readdirSync(results).map((name) => [name, readFileSync(join(results, name), 'utf8')]),
    )
    expect(written).toMatchObject({ verdict: 'fail', critical: '2', reason: 'ATTESTATION_NOT_PUSHED' })
    expect(written.message).toMatch(/its attestation was not pushed to .*project\/refused: .*answered 401/)
    const audited = await gate(
      ['--gate', 'high', '--mode', 'audit', '--input', TRIVY, '--attest', imageOf('project/refused')],
      { POLICY_REGISTRY_CONFIG: files['wrong.json']! },
    )
    expect(audited.code).toBe(EXIT.PASS)
    expect(audited.stderr).toContain('AUDIT: the gate would have failed here (exit 3, no verdict)')
  })

  it('a hostile image name is refused before anything, shown escaped', async () => {
    const gated = await gate([
      '--gate',
      'high',
      '--input',
      TRIVY,
      '--attest',
      `${registry.host}/app\u001b[2J\u0007@${DIGEST}`,
    ])
    expect(gated.code).toBe(EXIT.USAGE)
    expect(gated.stderr).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    expect(gated.stderr).toContain('\\x1b[2J')
  })
})

describe('--attest to a registry that lists referrers (OCI 1.1)', () => {
  /** A registry of msw handlers on real TLS: no auth, the image there, referrers listed when `referrers` is set. */
  async function fakeRegistry(referrers: boolean) {
    const tls = await makeTls('Referrers Registry CA')
    const blobs = new Map<string, Buffer>()
    const manifests: Array<{ reference: string; body: Record<string, unknown> }> = []
    const base = '/v2/project/app'
    const simulator = await startSimulator(
      [
        http.get('/v2/', () => HttpResponse.json({})),
        http.head(`${base}/manifests/:reference`, ({ params }) =>
          params.reference === DIGEST
            ? new HttpResponse(null, {
                status: 200,
                headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': '1234' },
              })
            : new HttpResponse(null, { status: 404 }),
        ),
        http.get(`${base}/manifests/:reference`, () =>
          HttpResponse.json({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }, { status: 404 }),
        ),
        http.head(
          `${base}/blobs/:digest`,
          ({ params }) => new HttpResponse(null, { status: blobs.has(String(params.digest)) ? 200 : 404 }),
        ),
        http.post(
          `${base}/blobs/uploads/`,
          () => new HttpResponse(null, { status: 202, headers: { location: `${base}/blobs/uploads/upload-1` } }),
        ),
        http.put(`${base}/blobs/uploads/:id`, async ({ request }) => {
          blobs.set(new URL(request.url).searchParams.get('digest')!, Buffer.from(await request.arrayBuffer()))
          return new HttpResponse(null, { status: 201 })
        }),
        http.put(`${base}/manifests/:reference`, async ({ request, params }) => {
          const body = (await request.json()) as Record<string, unknown>
          manifests.push({ reference: String(params.reference), body })
          const subject = body.subject as { digest: string } | undefined
          return new HttpResponse(null, { status: 201, headers: subject ? { 'oci-subject': subject.digest } : {} })
        }),
        http.get(`${base}/referrers/:digest`, () =>
          referrers
            ? HttpResponse.json(
                { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] },
                { headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } },
              )
            : HttpResponse.json({ errors: [{ code: 'NOT_FOUND' }] }, { status: 404 }),
        ),
      ],
      tls,
    )
    return { simulator, tls, blobs, manifests }
  }

  it.each([
    ['lists referrers', true],
    ['has no referrers API (distribution 2.8)', false],
  ])('a registry that %s gets the envelope as a referrer only then, besides the tag', async (_name, referrers) => {
    const registry = await fakeRegistry(referrers)
    try {
      const files = writeFiles({
        'ca.crt': registry.tls.caCert,
        'cosign.key': readFileSync(fixture('conforma-cosign.key'), 'utf8'),
      })
      const image = `${registry.simulator.hostPort}/project/app@${DIGEST}`
      const gated = await runGate(['--gate', 'critical', '--input', TRIVY, '--attest', image], {
        env: {
          POLICY_REGISTRY_CA_CERT: files['ca.crt']!,
          POLICY_ATTEST_KEY: files['cosign.key']!,
          COSIGN_PASSWORD: '',
        },
      })
      expect(gated.code, gated.stderr).toBe(EXIT.VIOLATION)
      const tagged = registry.manifests.find((manifest) => manifest.reference === `${DIGEST.replace(':', '-')}.att`)
      expect(tagged).toBeDefined()
      const layer = (tagged!.body.layers as Array<{ digest: string }>)[0]!
      const referrer = registry.manifests.find((manifest) => manifest.body.subject !== undefined)
      if (!referrers) {
        expect(referrer).toBeUndefined()
        expect(gated.stderr).not.toContain('as the referrer')
        return
      }
      expect(referrer!.body).toMatchObject({
        artifactType: 'application/vnd.dsse.envelope.v1+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', size: 2 },
        layers: [{ digest: layer.digest, annotations: { predicateType: VSA } }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: DIGEST, size: 1234 },
      })
      // Put by its own digest, as the distribution spec has a referrer pushed.
      expect(referrer!.reference).toBe(
        `sha256:${createHash('sha256').update(JSON.stringify(referrer!.body)).digest('hex')}`,
      )
      expect(gated.stderr).toContain(`and as the referrer ${referrer!.reference}`)
      expect(registry.blobs.get(layer.digest)).toBeDefined()
    } finally {
      await registry.simulator.close()
    }
  })
})
