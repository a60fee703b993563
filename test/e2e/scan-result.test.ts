// Straight from the registry: --scan-result reads a scan's published results (an imgpkg bundle, as Scan 2.0
// pushes it) through the registry API of a real registry, Debian's docker-registry, with TLS and either
// htpasswd (Basic) or token auth. The bundles hold real Trivy and Grype CycloneDX (test/fixtures/cyclonedx).
import { readFileSync } from 'node:fs'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { EXIT } from '../../gate/vocabulary.ts'
import { cycloneDxOf, SAMPLE_DIGEST, SAMPLE_IMAGE, sampleImageBody } from '../support/documents.ts'
import { useStoreFixture } from '../support/fixture.ts'
import { runGate, writeFiles } from '../support/gate.ts'
import {
  NAMESPACE,
  startKubernetes,
  type KubernetesApi,
  type KubernetesOptions,
  type ScanSpec,
} from '../support/kubernetes.ts'
import { answer, repeat } from '../support/simulator.ts'
import {
  missingRegistryTools,
  REGISTRY_PASSWORD,
  REGISTRY_USER,
  startRegistry,
  type Registry,
} from '../support/registry.ts'

const missing = await missingRegistryTools()
const fixture = (name: string) => readFileSync(new URL(`../fixtures/cyclonedx/${name}`, import.meta.url), 'utf8')
const TRIVY = fixture('trivy-fluentd.cdx.json')
const GRYPE = fixture('grype-presenter-image.cdx.json')
/** What imgpkg puts beside the scan's files. */
const IMGPKG = { '.imgpkg/images.yml': 'apiVersion: imgpkg.carvel.dev/v1alpha1\nkind: ImagesLock\nimages: []\n' }

const namedBom = cycloneDxOf

describe.skipIf(missing.length > 0)('--scan-result against a real registry', () => {
  let basic: Registry
  let token: Registry
  let files: Record<string, string>
  let bundle = ''
  const gate = (registry: Registry, args: string[], env: Record<string, string> = {}) =>
    runGate(args, {
      env: {
        GATE: 'high',
        POLICY_REGISTRY_CONFIG: files[`${registry === basic ? 'basic' : 'token'}.json`]!,
        POLICY_REGISTRY_CA_CERT: files[`${registry === basic ? 'basic' : 'token'}-ca.crt`]!,
        POLICY_POLL_INTERVAL: '100ms',
        ...env,
      },
    })

  beforeAll(async () => {
    ;[basic, token] = await Promise.all([startRegistry('basic'), startRegistry('token')])
    const dockerConfig = (registry: Registry, password = REGISTRY_PASSWORD) =>
      JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`${REGISTRY_USER}:${password}`).toString('base64') } },
      })
    files = writeFiles({
      'basic.json': dockerConfig(basic),
      'token.json': dockerConfig(token),
      // As TAP's registry-credentials secret holds it: username and password, an https:// key.
      'token-fields.json': JSON.stringify({
        auths: { [`https://${token.host}`]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
      }),
      'wrong.json': dockerConfig(basic, 'not-the-password-at-all'),
      'helper.json': JSON.stringify({ auths: {}, credsStore: 'desktop' }),
      'basic-ca.crt': basic.tls.caCert,
      'token-ca.crt': token.tls.caCert,
    })
    bundle = (
      await basic.push('project/app-default-scan-results', 'uid-1', {
        layers: [{ files: { 'scan.cdx.json': TRIVY, ...IMGPKG } }],
      })
    ).digest
  }, 60_000)

  afterAll(async () => {
    await Promise.all([basic?.close(), token?.close()])
  })

  it('evaluates the Trivy CycloneDX of an imgpkg bundle pinned by digest, with fixes, without the store', async () => {
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/app-default-scan-results@${bundle}`,
      SAMPLE_IMAGE,
    ])
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain(
      `evaluating scan.cdx.json from ${basic.host}/project/app-default-scan-results@${bundle}`,
    )
    expect(run.stdout).toContain('CVE-2019-18224')
    expect(run.stdout).toContain('fixed in 2.0.5-1+deb10u1')
    expect(run.stdout.trim().split('\n').at(-1)).toMatch(/^FAIL: /)
  })

  it('reads by tag, with the same verdict as the file given to --input', async () => {
    const byTag = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/app-default-scan-results:uid-1`,
      '--format',
      'json',
      SAMPLE_IMAGE,
    ])
    const input = writeFiles({ 'scan.cdx.json': TRIVY })
    const byFile = await runGate(['--input', input['scan.cdx.json']!, '--format', 'json', SAMPLE_IMAGE], {
      env: { GATE: 'high' },
    })
    expect(byTag.code).toBe(EXIT.VIOLATION)
    const { counts, blocking, verdict } = JSON.parse(byTag.stdout)
    expect({ counts, blocking, verdict }).toEqual(
      (({ counts, blocking, verdict }) => ({ counts, blocking, verdict }))(JSON.parse(byFile.stdout)),
    )
  })

  it('judges every CycloneDX file of a bundle together: one verdict over a Trivy and a Grype scan', async () => {
    const { digest } = await basic.push('project/multi-scan-results', 'uid-2', {
      layers: [{ files: { 'trivy.cdx.json': TRIVY, 'grype.cdx.json': GRYPE, ...IMGPKG } }],
    })
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/multi-scan-results@${digest}`,
      '--gate',
      'low',
      '--format',
      'json',
      SAMPLE_IMAGE,
    ])
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(run.stderr).toContain('evaluating trivy.cdx.json, grype.cdx.json')
    const ids = JSON.parse(run.stdout).blocking.map((finding: { id: string }) => finding.id)
    expect(ids).toEqual(expect.arrayContaining(['CVE-2019-18224', 'CVE-2020-8165', 'CVE-1999-0002', 'CVE-1999-0001']))
  })

  it('needs no image when the scan names the one it scanned', async () => {
    const { digest } = await basic.push('project/named-scan-results', 'uid-9', {
      layers: [{ files: { 'scan.cdx.json': namedBom(SAMPLE_DIGEST, 'critical'), ...IMGPKG } }],
    })
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/named-scan-results@${digest}`,
      '--format',
      'json',
    ])
    expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    expect(JSON.parse(run.stdout).image).toMatchObject({ digest: SAMPLE_DIGEST })
  })

  it('refuses files of one bundle that describe different images', async () => {
    const other = `sha256:${'b'.repeat(64)}`
    const { digest } = await basic.push('project/mixed-scan-results', 'uid-3', {
      layers: [{ files: { 'a.cdx.json': namedBom(SAMPLE_DIGEST, 'low'), 'b.cdx.json': namedBom(other, 'low') } }],
    })
    const run = await gate(basic, ['--scan-result', `${basic.host}/project/mixed-scan-results@${digest}`])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(`b.cdx.json describes ${other}, not ${SAMPLE_DIGEST}`)
  })

  it('says what a bundle without CycloneDX JSON holds (exit 3)', async () => {
    const { digest } = await basic.push('project/spdx-scan-results', 'uid-4', {
      layers: [
        {
          files: {
            'scan.spdx.json': '{"spdxVersion":"SPDX-2.3"}',
            'scan.xml': '<bom xmlns="http://cyclonedx.org/schema/bom/1.5"/>',
            ...IMGPKG,
          },
        },
      ],
    })
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/spdx-scan-results@${digest}`,
      SAMPLE_IMAGE,
      '--format',
      'json',
    ])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain('holds only scan.spdx.json, scan.xml: have the scanner write CycloneDX JSON')
    expect(JSON.parse(run.stdout).error.code).toBe('NO_SCAN_FILE')
  })

  it('resolves an index to its image, and reads uncompressed tar layers and artifact layers', async () => {
    const { digest: indexed } = await basic.push('project/indexed-scan-results', 'uid-5', {
      index: true,
      layers: [{ files: { 'scan.cdx.json': namedBom(SAMPLE_DIGEST, 'high') }, compress: false }],
    })
    const byIndex = await gate(basic, ['--scan-result', `${basic.host}/project/indexed-scan-results@${indexed}`])
    expect(byIndex.code, byIndex.stderr).toBe(EXIT.VIOLATION)
    const { digest: artifact } = await basic.push('project/oras-scan-results', 'uid-6', {
      layers: [
        {
          raw: Buffer.from(namedBom(SAMPLE_DIGEST, 'medium')),
          mediaType: 'application/vnd.cyclonedx+json',
          title: 'scan.cdx.json',
        },
      ],
    })
    const byArtifact = await gate(basic, ['--scan-result', `${basic.host}/project/oras-scan-results@${artifact}`])
    expect(byArtifact.code, byArtifact.stderr).toBe(EXIT.PASS)
    expect(byArtifact.stderr).toContain('evaluating scan.cdx.json')
  })

  it('checks every blob against its digest: a registry that serves other bytes gives no verdict', async () => {
    // A layer of its own (the registry stores blobs by content): corrupting it must not touch other tests' bundles.
    const { digest, layers } = await basic.push('project/tampered-scan-results', 'uid-7', {
      layers: [{ files: { 'scan.cdx.json': namedBom(SAMPLE_DIGEST, 'low'), '.imgpkg/tampered.yml': 'only here' } }],
    })
    const intact = await gate(basic, ['--scan-result', `${basic.host}/project/tampered-scan-results@${digest}`])
    expect(intact.code, intact.stderr).toBe(EXIT.PASS)
    const layerDigest = layers[0]
    basic.corruptBlob(layerDigest!)
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/tampered-scan-results@${digest}`,
      '--format',
      'json',
    ])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout).error.code).toBe('DIGEST_MISMATCH')
  })

  it('unpacks a layer only up to --max-body-size: a gzip bomb gives no verdict, not an out-of-memory crash', async () => {
    const { digest } = await basic.push('project/bomb-scan-results', 'uid-10', {
      layers: [{ files: { 'scan.cdx.json': Buffer.alloc(64 * 1024 * 1024, ' ') } }],
    })
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/bomb-scan-results@${digest}`,
      '--max-body-size',
      '1MiB',
      '--format',
      'json',
      SAMPLE_IMAGE,
    ])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toMatch(
      /the bundle, unpacked up to layer sha256:[0-9a-f]{64}, is larger than the --max-body-size of 1048576 bytes/,
    )
    expect(JSON.parse(run.stdout).error.code).toBe('BODY_TOO_LARGE')
  })

  it('caps what all layers together unpack to, not only each one', async () => {
    const layer = (n: number) => ({ files: { [`.imgpkg/part-${n}.yml`]: Buffer.alloc(400 * 1024, ' ') } })
    const { digest } = await basic.push('project/many-layers-scan-results', 'uid-11', {
      layers: [layer(1), layer(2), layer(3), { files: { 'scan.cdx.json': namedBom(SAMPLE_DIGEST, 'unknown') } }],
    })
    const capped = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/many-layers-scan-results@${digest}`,
      '--max-body-size',
      '1MiB',
      SAMPLE_IMAGE,
    ])
    expect(capped.code).toBe(EXIT.NO_VERDICT)
    expect(capped.stderr).toMatch(
      /the bundle, unpacked up to layer sha256:[0-9a-f]{64}, is larger than the --max-body-size of 1048576 bytes/,
    )
    const roomy = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/many-layers-scan-results@${digest}`,
      '--max-body-size',
      '2MiB',
      SAMPLE_IMAGE,
    ])
    expect(roomy.code, roomy.stderr).toBe(EXIT.PASS)
  })

  it('reads at most 64 layers: more is not a scan result', async () => {
    const { digest } = await basic.push('project/layered-scan-results', 'uid-12', {
      layers: Array.from({ length: 65 }, (_, index) => ({ files: { [`.imgpkg/part-${index}.yml`]: `part ${index}` } })),
    })
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/layered-scan-results@${digest}`,
      SAMPLE_IMAGE,
    ])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain('has 65 layers; a scan result has a few (an imgpkg bundle one): at most 64 are read')
  })

  it('keeps a bundle larger than --max-body-size out (exit 3)', async () => {
    const run = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/app-default-scan-results@${bundle}`,
      '--max-body-size',
      '1KiB',
      SAMPLE_IMAGE,
    ])
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain('is larger than the --max-body-size of 1024 bytes')
  })

  it.each([
    ['no credentials', '', 'give credentials for'],
    ['a wrong password', 'wrong.json', 'check the credentials for'],
  ])('ends with exit 3 REGISTRY_REJECTED on %s, naming the fix', async (_, configFile, fix) => {
    const config = { POLICY_REGISTRY_CONFIG: configFile && files[configFile]! }
    const run = await gate(
      basic,
      ['--scan-result', `${basic.host}/project/app-default-scan-results@${bundle}`, '--format', 'json', SAMPLE_IMAGE],
      config,
    )
    expect(run.code).toBe(EXIT.NO_VERDICT)
    expect(run.stderr).toContain(fix)
    expect(JSON.parse(run.stdout).error.code).toBe('REGISTRY_REJECTED')
  })

  it('says a missing result is missing (exit 3), and that a registry without its CA is a TLS failure', async () => {
    const missingResult = await gate(basic, [
      '--scan-result',
      `${basic.host}/project/app-default-scan-results:no-such-tag`,
      SAMPLE_IMAGE,
    ])
    expect(missingResult.code).toBe(EXIT.NO_VERDICT)
    expect(missingResult.stderr).toMatch(/answered 404 \(MANIFEST_UNKNOWN/)
    const untrusted = await gate(
      basic,
      ['--scan-result', `${basic.host}/project/app-default-scan-results@${bundle}`, SAMPLE_IMAGE],
      { POLICY_REGISTRY_CA_CERT: '' },
    )
    expect(untrusted.code).toBe(EXIT.NO_VERDICT)
    expect(untrusted.stderr).toContain(`TLS with the registry ${basic.host} failed`)
    expect(untrusted.stderr).toContain('--registry-ca-cert')
  })

  it('follows a Bearer challenge to the token service, sending the credentials there and a pull scope', async () => {
    const { digest } = await token.push('project/token-scan-results', 'uid-8', {
      layers: [{ files: { 'scan.cdx.json': namedBom(SAMPLE_DIGEST, 'critical'), ...IMGPKG } }],
    })
    token.tokenRequests.length = 0
    for (const config of ['token.json', 'token-fields.json']) {
      const run = await gate(token, ['--scan-result', `${token.host}/project/token-scan-results:uid-8`], {
        POLICY_REGISTRY_CONFIG: files[config]!,
      })
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
    }
    expect(token.tokenRequests.length).toBeGreaterThanOrEqual(2)
    for (const request of token.tokenRequests) {
      expect(request.scope).toBe('repository:project/token-scan-results:pull')
      expect(request.authorization).toMatch(/^Basic /)
    }
    expect(digest).toMatch(/^sha256:/)
    const anonymous = await gate(token, ['--scan-result', `${token.host}/project/token-scan-results:uid-8`], {
      POLICY_REGISTRY_CONFIG: '',
    })
    expect(anonymous.code).toBe(EXIT.NO_VERDICT)
    expect(anonymous.stderr).toContain(`the token service https://localhost`)
  })

  it('refuses a Docker config that only names a credential helper, which cannot run in the image (exit 2)', async () => {
    const run = await gate(
      basic,
      ['--scan-result', `${basic.host}/project/app-default-scan-results@${bundle}`, SAMPLE_IMAGE],
      { POLICY_REGISTRY_CONFIG: files['helper.json']! },
    )
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain('credential helper desktop')
  })
})

describe.skipIf(missing.length > 0)(
  '--scan-result auto: following the ImageVulnerabilityScan through the Kubernetes API',
  () => {
    const store = useStoreFixture()
    let registry: Registry
    let files: Record<string, string>
    let bundle = ''
    let kubernetes: KubernetesApi | undefined
    const running = (name: string): ScanSpec => ({ name, digest: SAMPLE_DIGEST })
    const succeeded = (name: string, at = '2026-11-28T12:00:00Z'): ScanSpec => ({
      name,
      digest: SAMPLE_DIGEST,
      succeeded: { status: 'True', reason: 'Succeeded', at },
      scanResult: bundle,
    })
    const gate = async (
      states: ReadonlyArray<readonly ScanSpec[]>,
      args: string[] = [],
      env: Record<string, string> = {},
      options: KubernetesOptions = {},
    ) => {
      kubernetes = await startKubernetes(store.tls, states, options)
      return runGate([...args, SAMPLE_IMAGE], {
        env: {
          GATE: 'high',
          POLICY_SCAN_RESULT: 'auto',
          POLICY_REGISTRY_CONFIG: files['config.json']!,
          POLICY_REGISTRY_CA_CERT: files['ca.crt']!,
          POLICY_POLL_INTERVAL: '100ms',
          ...kubernetes.env,
          ...env,
        },
      })
    }

    beforeAll(async () => {
      registry = await startRegistry('basic')
      files = writeFiles({
        'config.json': JSON.stringify({
          auths: { [registry.host]: { username: REGISTRY_USER, password: REGISTRY_PASSWORD } },
        }),
        'ca.crt': registry.tls.caCert,
      })
      const pushed = await registry.push('project/app-dev-team-scan-results', 'workload-uid', {
        layers: [{ files: { 'scan.cdx.json': TRIVY, ...IMGPKG } }],
      })
      bundle = `${registry.host}/project/app-dev-team-scan-results@${pushed.digest}`
    }, 60_000)

    afterAll(async () => {
      await registry?.close()
    })

    afterEach(async () => {
      await kubernetes?.close()
      kubernetes = undefined
    })

    it('waits while there is no scan and while it runs, then evaluates the results it published', async () => {
      // A poll interval far longer than the test: only the watch can bring the change in time.
      const run = await gate(
        [[], [running('app-trivy-scan-x7k2p')], [succeeded('app-trivy-scan-x7k2p')]],
        ['--scan-selector', 'carto.run/workload-name=app'],
        { POLICY_POLL_INTERVAL: '10m' },
      )
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toContain(
        `following the ImageVulnerabilityScan of ${SAMPLE_IMAGE} in namespace ${NAMESPACE} ` +
          `(carto.run/workload-name=app)`,
      )
      expect(run.stderr).toContain(`no ImageVulnerabilityScan of ${SAMPLE_DIGEST} yet`)
      expect(run.stderr).toContain('scan app-trivy-scan-x7k2p is not done: no conditions yet')
      expect(run.stderr).toContain(`reading the scan results ${bundle}`)
      expect(run.stdout).toContain('CVE-2019-18224')
      // One list, then one watch from its resourceVersion that hears the scan change: no polling.
      expect(kubernetes!.listed).toHaveLength(2)
      expect(kubernetes!.listed[0]).toBe(`?labelSelector=${encodeURIComponent('carto.run/workload-name=app')}`)
      expect(kubernetes!.listed[1]).toMatch(
        /^\?labelSelector=carto.run%2Fworkload-name%3Dapp&watch=1&allowWatchBookmarks=true&timeoutSeconds=45&resourceVersion=\d+$/,
      )
    })

    it("with --baseline, reads the running image's results from its own succeeded scan", async () => {
      const baselineDigest = `sha256:${'b'.repeat(64)}`
      const pushed = await registry.push('project/app-dev-team-scan-results', 'baseline-uid', {
        layers: [{ files: { 'scan.cdx.json': TRIVY.replace('"CVE-2019-18224"', '"CVE-0000-0000"'), ...IMGPKG } }],
      })
      const baselineScan: ScanSpec = {
        name: 'app-trivy-scan-old',
        digest: baselineDigest,
        created: '2026-11-20T10:00:00Z',
        succeeded: { status: 'True' },
        scanResult: `${registry.host}/project/app-dev-team-scan-results@${pushed.digest}`,
      }
      const run = await gate(
        [
          [running('app-trivy-scan-x7k2p'), baselineScan],
          [succeeded('app-trivy-scan-x7k2p'), baselineScan],
        ],
        ['--baseline', `registry.example.com/project/app@${baselineDigest}`, '--format', 'json'],
      )
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toContain(
        `reading the scan results ${registry.host}/project/app-dev-team-scan-results@${pushed.digest}`,
      )
      // The running image had everything but CVE-2019-18224 (its ID changed in the baseline's copy): only that one is
      // new.
      const report = JSON.parse(run.stdout)
      expect(report.blocking.map((finding: { id: string }) => finding.id)).toEqual(['CVE-2019-18224'])
      expect(report.warnings.map((finding: { id: string }) => finding.id)).toEqual(['CVE-2020-8165', 'CVE-2019-18276'])
    })

    it("takes the newest scan of the image, whatever other images' scans say", async () => {
      const older: ScanSpec = {
        name: 'app-trivy-scan-old',
        digest: SAMPLE_DIGEST,
        created: '2026-11-27T09:00:00Z',
        succeeded: { status: 'False', reason: 'Failed', message: 'old failure' },
      }
      const otherImage: ScanSpec = {
        name: 'other-trivy-scan-a',
        digest: `sha256:${'c'.repeat(64)}`,
        created: '2026-11-28T11:59:00Z',
        succeeded: { status: 'False', reason: 'Failed', message: 'not this image' },
      }
      const run = await gate([[older, otherImage, succeeded('app-trivy-scan-new')]])
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).not.toContain('failure')
    })

    it('lists again when the watch has fallen behind (410 Gone), and reads the scan that succeeded meanwhile', async () => {
      const run = await gate(
        [[running('app-trivy-scan-x7k2p')], [succeeded('app-trivy-scan-x7k2p')]],
        [],
        {},
        { gone: true },
      )
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toContain('the watch fell behind (410 Gone): listing again')
      expect(kubernetes!.listed.filter((query) => !query.includes('watch=1'))).toHaveLength(2)
    })

    it('stops at once when the scan fails while it is watched, with its reason and message (exit 3)', async () => {
      const failed: ScanSpec = {
        name: 'app-trivy-scan-x7k2p',
        digest: SAMPLE_DIGEST,
        succeeded: { status: 'False', reason: 'Failed', message: 'scan-task exited with 1' },
      }
      const run = await gate([[running('app-trivy-scan-x7k2p')], [failed]], [], { POLICY_POLL_INTERVAL: '10m' })
      expect(run.code).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toContain('failed (Failed: scan-task exited with 1)')
    })

    it('stops at once when the scan failed, with its reason and message (exit 3)', async () => {
      const failed: ScanSpec = {
        name: 'app-trivy-scan-f00',
        digest: SAMPLE_DIGEST,
        succeeded: { status: 'False', reason: 'Failed', message: 'results folder /workspace/scan-results is empty' },
      }
      const run = await gate([[failed]], ['--format', 'json'])
      expect(run.code).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toContain(
        `scan app-trivy-scan-f00 of ${SAMPLE_DIGEST} failed (Failed: results folder /workspace/scan-results is empty)`,
      )
      expect(JSON.parse(run.stdout).error.code).toBe('SCAN_FAILED')
      expect(kubernetes!.listed).toHaveLength(1)
    })

    it('keeps its deadline when the conditions stay blank, and says what that may mean', async () => {
      const run = await gate([[running('app-trivy-scan-blank')]], ['--timeout', '2s'])
      expect(run.code).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toMatch(
        /timed out after 2s waiting for a finished scan of sha256:[0-9a-f]{64} in namespace dev-team \(1 requests; last: scan app-trivy-scan-blank is not done: no conditions yet/,
      )
      expect(run.stderr).toContain('if they stay blank, check that the installed Tekton is one Scan 2.0 supports')
    })

    it('names the Role to apply when the service account may not list scans (exit 3)', async () => {
      const run = await gate([[]], ['--format', 'json'], {}, { deny: true })
      expect(run.code).toBe(EXIT.NO_VERDICT)
      expect(run.stderr).toContain('Role amr-policy-gate-scan-reader')
      expect(JSON.parse(run.stdout).error.code).toBe('KUBERNETES_ERROR')
    })

    it('waiting for the store, says the scan succeeded and the store has not received it yet', async () => {
      const at = new Date(Date.now() - 6 * 60_000).toISOString()
      await store.serve([...repeat(2, answer.notFound()), answer.image(sampleImageBody())])
      kubernetes = await startKubernetes(store.tls, [[succeeded('app-trivy-scan-x7k2p', at)]])
      const run = await store.gate([], { ...kubernetes.env })
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr).toMatch(
        /not in the store yet \(404\); scan app-trivy-scan-x7k2p succeeded 6m\d*s? ago; the store has not received it yet: the AMR Observer is behind or down/,
      )
    })
  },
)

describe.skipIf(missing.length > 0)('waiting for the store, with a scan that failed', () => {
  const store = useStoreFixture()
  let kubernetes: KubernetesApi | undefined
  afterEach(async () => {
    await kubernetes?.close()
  })

  it('stops at once with SCAN_FAILED instead of waiting out its timeout: the store will never receive it', async () => {
    await store.serve([answer.notFound()])
    kubernetes = await startKubernetes(store.tls, [
      [
        {
          name: 'app-trivy-scan-x7k2p',
          digest: SAMPLE_DIGEST,
          succeeded: {
            status: 'False',
            reason: 'Error',
            message: 'grype db download failed',
            at: '2026-11-28T12:00:00Z',
          },
        },
      ],
    ])
    const run = await store.gate(['--timeout', '60s', '--format', 'json'], { ...kubernetes.env })
    expect(run.code, run.stderr).toBe(EXIT.NO_VERDICT)
    expect(JSON.parse(run.stdout)).toMatchObject({
      reason: 'SCAN_FAILED',
      error: { message: expect.stringContaining('scan app-trivy-scan-x7k2p of') },
    })
    expect(run.stderr).toContain('grype db download failed')
    expect(run.ms).toBeLessThan(30_000)
  })
})

describe('waiting for the store where the scans cannot be read', () => {
  const store = useStoreFixture()

  it('says once that it cannot follow the scan, and waits for the store as before', async () => {
    await store.serve([...repeat(3, answer.notFound()), answer.image(sampleImageBody())])
    const kubernetes = await startKubernetes(store.tls, [[]], { deny: true })
    try {
      const run = await store.gate([], kubernetes.env)
      expect(run.code, run.stderr).toBe(EXIT.VIOLATION)
      expect(run.stderr.match(/cannot follow the image's scan \(the Kubernetes API answered 403/g)).toHaveLength(1)
      expect(run.stderr.match(/not in the store yet \(404\); attempt/g)).toHaveLength(3)
      expect(kubernetes.listed).toHaveLength(1)
    } finally {
      await kubernetes.close()
    }
  })
})

describe('--scan-result usage', () => {
  it.each([
    [['--scan-result', 'project/app:tag', SAMPLE_IMAGE], 'names no registry host'],
    [['--scan-result', 'registry.example.com/project/app', SAMPLE_IMAGE], 'has neither tag nor digest'],
    [['--scan-result', 'registry.example.com/Project/app:x', SAMPLE_IMAGE], 'has an invalid repository'],
    [
      ['--scan-result', 'registry.example.com/app:x', '--input', '-', SAMPLE_IMAGE],
      'both say where the scan comes from',
    ],
    [
      ['--scan-result', 'registry.example.com/app:x', '--newer-than', '1h', SAMPLE_IMAGE],
      '--newer-than asks the store, which --scan-result does not',
    ],
    [['--scan-result', 'auto', SAMPLE_IMAGE], 'KUBERNETES_SERVICE_HOST is not set'],
    [['--scan-result', 'auto'], 'no image given'],
    [['--scan-result', 'auto', '--scan-selector', 'a b', SAMPLE_IMAGE], 'is not a label selector'],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const run = await runGate(args, { env: { GATE: 'high' } })
    expect(run.code).toBe(EXIT.USAGE)
    expect(run.stderr).toContain(message)
  })
})
